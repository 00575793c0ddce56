import { LodgeError } from '../errors';

const RECENT_MAX = 256;
const RECENT_MS = 30_000;

/**
 * What a few recent events left to look up: at most `max` entries, none older than
 * `ttlMs` (a Map iterates oldest first, so the old go from the front as new come).
 */
export class Recent<K, V> {
  private readonly entries = new Map<K, { value: V; at: number }>();

  constructor(private readonly max = RECENT_MAX, private readonly ttlMs = RECENT_MS) {}

  get(key: K): V | undefined {
    const e = this.entries.get(key);
    return e && Date.now() - e.at < this.ttlMs ? e.value : undefined;
  }

  set(key: K, value: V): void {
    const now = Date.now();
    for (const [old, e] of this.entries) {
      if (now - e.at < this.ttlMs && this.entries.size < this.max) break;
      this.entries.delete(old);
    }
    this.entries.delete(key);
    this.entries.set(key, { value, at: now });
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Why workers that exited lately went, by pid: a VERDICT LOST from mod_lodge may come
 * after the worker is gone from its pool (a watchdog killed it mid-request).
 */
const recentExits = new Recent<number, LodgeError>();

/**
 * The pids of workers that held a request when they exited, by ticket and app socket:
 * a VERDICT for a request that failed before its worker's ACCEPTED names the worker so
 * (its app's socket may be gone by then, with its last worker).
 */
const recentTickets = new Recent<string, number>();

/** Why the worker with this pid exited, when it did so lately. */
export function recentExitError(pid: number): LodgeError | undefined {
  return recentExits.get(pid);
}

export function noteExit(pid: number, err: LodgeError): void {
  // Its stack made text now: a stack not yet read holds every frame's objects (the
  // worker, its child process, its socket and that socket's 64 KiB read buffer) for as
  // long as the error is kept, ~65 KiB an exit, 16 MiB for the 256 kept (measured).
  void err.stack;
  recentExits.set(pid, err);
}

export function noteTicket(socket: string, ticket: number, pid: number): void {
  recentTickets.set(`${ticket} ${socket}`, pid);
}

/** The pid of the worker that held the request with this ticket when it exited, lately. */
export function recentTicketPid(socket: string, ticket: number): number | undefined {
  return recentTickets.get(`${ticket} ${socket}`);
}
