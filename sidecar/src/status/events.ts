import type { StatusEvent } from './schema';

/** Events kept: enough for the page's list and a tenant's recent history. */
export const EVENTS_MAX = 1000;
/** A message is clipped to this many characters (a traceback's last line is enough). */
export const EVENT_MESSAGE_MAX = 500;
/** The same event again within this long (a refused app, request after request) is counted, not repeated. */
export const EVENT_REPEAT_MS = 60_000;

/**
 * The recent events (reloads, kills with their reason, crashes, refusals, clamps,
 * share refusals): a ring of EVENTS_MAX, the oldest overwritten first, each message
 * clipped, so the ring holds at most EVENTS_MAX × (EVENT_MESSAGE_MAX + ~100) bytes
 * whatever happens. An event that repeats the last one of its app within
 * EVENT_REPEAT_MS bumps that one's count instead of pushing the others out.
 */
export class EventRing {
  private readonly ring: Array<StatusEvent & { repeats?: number }> = [];
  private next = 0;
  private readonly listeners = new Set<(e: StatusEvent) => void>();

  constructor(private readonly max = EVENTS_MAX) {}

  push(e: StatusEvent): void {
    const message = e.message.length > EVENT_MESSAGE_MAX ? `${e.message.slice(0, EVENT_MESSAGE_MAX - 1)}…` : e.message;
    const ev: StatusEvent = { ...e, message };
    const last = this.latest(ev.app, ev.uid);
    if (last && last.kind === ev.kind && last.message === ev.message && ev.at - last.at < EVENT_REPEAT_MS) {
      last.repeats = (last.repeats ?? 0) + 1;
      return;
    }
    if (this.ring.length < this.max) this.ring.push(ev);
    else this.ring[this.next] = ev;
    this.next = (this.next + 1) % this.max;
    for (const fn of this.listeners) fn(ev);
  }

  /** Oldest first; `keep` filters (a tenant's view). */
  list(keep: (e: StatusEvent) => boolean = () => true): StatusEvent[] {
    const out: StatusEvent[] = [];
    for (const e of this.ordered()) {
      if (!keep(e)) continue;
      out.push(e.repeats ? { ...e, message: `${e.message} (${e.repeats + 1} times)` } : e);
    }
    return out;
  }

  /** Removes the events `match` picks (a tenant clearing its app's errors). */
  drop(match: (e: StatusEvent) => boolean): number {
    const kept = this.ordered().filter((e) => !match(e));
    const dropped = this.ring.length - kept.length;
    this.ring.length = 0;
    this.ring.push(...kept);
    this.next = kept.length % this.max;
    return dropped;
  }

  // The ring's events oldest first, as stored (repeat counts kept).
  private ordered(): Array<StatusEvent & { repeats?: number }> {
    const n = this.ring.length;
    const start = n < this.max ? 0 : this.next;
    const out: Array<StatusEvent & { repeats?: number }> = [];
    for (let i = 0; i < n; i++) out.push(this.ring[(start + i) % n]);
    return out;
  }

  get size(): number {
    return this.ring.length;
  }

  /** Calls fn with each new event (the page's live list); returns the unsubscribe. */
  subscribe(fn: (e: StatusEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // The newest event of the same app and uid among the last few: repeats interleave
  // with other apps' events only rarely, and a full scan would cost per push.
  private latest(app: string | undefined, uid: number | undefined): (StatusEvent & { repeats?: number }) | undefined {
    const n = this.ring.length;
    for (let k = 1; k <= Math.min(8, n); k++) {
      const e = this.ring[(this.next - k + n) % n];
      if (e.app === app && e.uid === uid) return e;
    }
    return undefined;
  }
}

/** lodged's one ring, which the pool's hooks write and the status model reads. */
export const statusEvents = new EventRing();
