import type { AppLimits } from '../config/schema';
import { AppRecord } from './app-record';
import { EventRing, statusEvents } from './events';

/**
 * Apps remembered, running or not. Past it the one that opened least recently is
 * forgotten (its counters with it); a live pool keeps its own record and still shows.
 * At the ~1 KiB an idle app's record costs (test/status-memory.test.ts measures it),
 * the book holds at most ~10 MiB.
 */
export const APPS_MAX = 10_000;

interface SpecLike {
  root: string;
  entry: string;
  kind: string;
  limits: AppLimits;
}

/** Every app lodged has seen, by app directory, in the order they last opened. */
export class AppBook {
  private readonly apps = new Map<string, AppRecord>();

  constructor(readonly max = APPS_MAX, readonly events: EventRing = statusEvents) {}

  /** A pool opens for the app: its record, new or kept, now its owner's and its settings'. */
  open(spec: SpecLike, uid: number): AppRecord {
    let rec = this.apps.get(spec.root);
    if (rec) this.apps.delete(spec.root);
    else rec = new AppRecord(spec.root, uid, this.events);
    this.apps.set(spec.root, rec);
    rec.uid = uid;
    rec.entry = spec.entry;
    rec.kind = spec.kind;
    rec.limits = spec.limits;
    rec.refusal = undefined;
    rec.generation = 0;
    this.bound();
    return rec;
  }

  /**
   * lodged refused to run an app: remembered as refused, with why. `spec` is what the
   * request asked for (after the host's caps), when it could be read.
   */
  refused(spec: SpecLike, uid: number, message: string): void {
    let rec = this.apps.get(spec.root);
    if (!rec) {
      rec = new AppRecord(spec.root, uid, this.events);
      rec.entry = spec.entry;
      rec.kind = spec.kind;
      rec.limits = spec.limits;
      this.apps.set(spec.root, rec);
      this.bound();
    }
    rec.refused(message);
  }

  get(root: string): AppRecord | undefined {
    return this.apps.get(root);
  }

  values(): IterableIterator<AppRecord> {
    return this.apps.values();
  }

  get size(): number {
    return this.apps.size;
  }

  private bound(): void {
    while (this.apps.size > this.max) {
      const [root] = this.apps.keys();
      this.apps.delete(root);
    }
  }
}

/** lodged's one book: pools open records in it, the status model reads it. */
export const appBook = new AppBook();

/** A host-wide line for the event list that no app record carries (e.g. a malformed APP frame). */
export function hostEvent(kind: 'refusal' | 'clamp' | 'share', message: string, uid?: number, app?: string): void {
  statusEvents.push({ at: Date.now(), uid, app, kind, message });
}
