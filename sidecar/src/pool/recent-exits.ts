import { LodgeError } from '../errors';

/**
 * Why workers that exited lately went, by pid: a VERDICT LOST from mod_lodge may come
 * after the worker is gone from its pool (a watchdog killed it mid-request). Bounded:
 * the oldest go first, and none is kept past RECENT_EXIT_MS.
 */
const recentExits = new Map<number, { err: LodgeError; at: number }>();
const RECENT_EXITS_MAX = 256;
const RECENT_EXIT_MS = 30_000;

/** Why the worker with this pid exited, when it did so in the last RECENT_EXIT_MS. */
export function recentExitError(pid: number): LodgeError | undefined {
  const e = recentExits.get(pid);
  return e && Date.now() - e.at < RECENT_EXIT_MS ? e.err : undefined;
}

/**
 * The tickets of the requests workers held when they exited, by app socket: a VERDICT
 * for a request that failed before its worker's ACCEPTED names the worker so (its app's
 * socket may be gone by then, with its last worker). Bounded as the exits are.
 */
const recentTickets = new Map<string, { pid: number; at: number }>();

export function noteTicket(socket: string, ticket: number, pid: number): void {
  const key = `${ticket} ${socket}`;
  const now = Date.now();
  for (const [old, e] of recentTickets) {
    if (now - e.at < RECENT_EXIT_MS && recentTickets.size < RECENT_EXITS_MAX) break;
    recentTickets.delete(old);
  }
  recentTickets.delete(key);
  recentTickets.set(key, { pid, at: now });
}

/** The pid of the worker that held the request with this ticket when it exited, lately. */
export function recentTicketPid(socket: string, ticket: number): number | undefined {
  const e = recentTickets.get(`${ticket} ${socket}`);
  return e && Date.now() - e.at < RECENT_EXIT_MS ? e.pid : undefined;
}

export function noteExit(pid: number, err: LodgeError): void {
  // Its stack made text now: a stack not yet read holds every frame's objects (the
  // worker, its child process, its socket and that socket's 64 KiB read buffer) for as
  // long as the error is kept, ~65 KiB an exit, 16 MiB for the 256 kept (measured).
  void err.stack;
  const now = Date.now();
  for (const [old, e] of recentExits) {
    if (now - e.at < RECENT_EXIT_MS) break;
    recentExits.delete(old);
  }
  recentExits.delete(pid);
  recentExits.set(pid, { err, at: now });
  if (recentExits.size > RECENT_EXITS_MAX) recentExits.delete(recentExits.keys().next().value!);
}
