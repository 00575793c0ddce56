import type { AppLimits } from '../config/schema';
import type { EventRing } from './events';
import { Latency } from './latency';
import type { KillReason } from './schema';

/** A worker that died within this long of its start counts as an unstable restart. */
export const UNSTABLE_MS = 10_000;

/** What the record reads of a worker that exited (pool/worker.ts). */
export interface ExitedWorker {
  readonly pid: number;
  readonly startedAt: number;
  /** Why lodged stopped it, or 'crash'; undefined when it left as asked (idle, recycled). */
  readonly exitReason?: KillReason;
  /** The last line lodged wrote to the tenant's log about it: the why, in the tenant's words. */
  readonly lastTold?: string;
}

/**
 * The counters of one app (one app directory), kept while its pool comes and goes:
 * the pool's hooks bump them (one line each, no allocation per request), the status
 * model reads them. Outlives the pool so that an app reaped for idleness still shows,
 * as idle-stopped, with what it did.
 */
export class AppRecord {
  entry = '';
  kind = '';
  limits?: AppLimits;
  total = 0;
  c2xx = 0;
  c3xx = 0;
  c4xx = 0;
  c5xx = 0;
  /** Requests whose status lodged did not see: mod_lodge carried the response itself (a lent worker). */
  unseen = 0;
  /** Requests lodged answered without a worker: queue full, app refused or failing to start, shutting down. */
  turnedAway = 0;
  capReached = 0;
  queuePeak = 0;
  restarts = 0;
  unstableRestarts = 0;
  kills?: Partial<Record<KillReason, number>>;
  /** The code generation now live (0 until the first reload). */
  generation = 0;
  lastReload?: { at: number; ok: boolean; error?: string };
  /** The last start failure, until a worker gets ready. */
  failure?: { message: string; at: number };
  /** Why lodged refused to run the app, until a pool opens for it. */
  refusal?: { message: string; at: number };
  lastRequest = 0;
  readonly latency = new Latency();

  constructor(readonly root: string, public uid: number, private readonly events: EventRing) {}

  /** A request ended with `status` (0: not seen), `began` from performance.now(). */
  ended(status: number, began: number, turnedAway: boolean): void {
    // One clock read for both the duration and the wall time (about 400 ns per call in all, measured).
    const t = performance.now();
    const now = performance.timeOrigin + t;
    this.total++;
    if (turnedAway) this.turnedAway++;
    if (status >= 200 && status < 300) this.c2xx++;
    else if (status >= 300 && status < 400) this.c3xx++;
    else if (status >= 400 && status < 500) this.c4xx++;
    else if (status >= 500 && status < 600) this.c5xx++;
    else this.unseen++;
    this.lastRequest = Math.round(now);
    if (began > 0) this.latency.add((t - began) / 1000, now);
  }

  /**
   * Requests a worker took straight from Apache, as its scoreboard slot counted them
   * (scoreboard/tally.ts): by status class [1xx, 2xx, 3xx, 4xx, 5xx, other].
   */
  endedOnBoard(d: { ended: number; statusClass: number[]; latencySumNs: number; prom: number[]; fine: number[] }): void {
    const now = Date.now();
    this.total += d.ended;
    this.c2xx += d.statusClass[1];
    this.c3xx += d.statusClass[2];
    this.c4xx += d.statusClass[3];
    this.c5xx += d.statusClass[4];
    this.unseen += d.statusClass[0] + d.statusClass[5];
    this.lastRequest = now;
    this.latency.addCounts(d.fine, d.prom, d.latencySumNs / 1e9, now);
  }

  queued(length: number): void {
    if (length > this.queuePeak) this.queuePeak = length;
  }

  reloaded(generation: number): void {
    this.generation = generation;
    this.lastReload = { at: Date.now(), ok: true };
    this.event('reload', `new code is live (generation ${generation})`);
  }

  reloadFailed(message: string): void {
    this.lastReload = { at: Date.now(), ok: false, error: message };
    this.event('reload', `the changed code failed to load; the previous code keeps serving: ${message}`);
  }

  startFailed(message: string, retryMs: number): void {
    this.failure = { message, at: Date.now() };
    this.event('start-failed', `${message}; next try in ${retryMs / 1000} s or when the file changes`);
  }

  ready(): void {
    this.failure = undefined;
  }

  workerExited(w: ExitedWorker): void {
    const reason = w.exitReason;
    if (!reason) return;
    (this.kills ??= {})[reason] = (this.kills[reason] ?? 0) + 1;
    this.restarts++;
    if (Date.now() - w.startedAt < UNSTABLE_MS) this.unstableRestarts++;
    const why = w.lastTold ?? `worker ${w.pid} stopped (${reason})`;
    this.event(reason === 'crash' ? 'crash' : 'kill', `${reason}: ${why}`);
  }

  refused(message: string): void {
    this.refusal = { message, at: Date.now() };
    this.event('refusal', message);
  }

  event(kind: 'reload' | 'kill' | 'crash' | 'refusal' | 'clamp' | 'start-failed' | 'share', message: string): void {
    this.events.push({ at: Date.now(), uid: this.uid, app: this.root, kind, message });
  }
}
