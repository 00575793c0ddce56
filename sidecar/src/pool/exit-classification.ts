import { LodgeError, WorkerDiedError } from '../errors';
import { tenantText } from '../log';
import type { KillReason } from '../status/kill-reason';
import type { Verdict } from '../watchdog/guard';

/**
 * What lodged knew about a worker when it exited. Gathered by worker.ts from the exit
 * event and its own state; nothing here is read from the process, so tests build it
 * by hand (classifyExit({ signal: 'SIGKILL', ... })).
 */
export interface ExitFacts {
  pid: number;
  /** `root/entry`, for the host's log and the request's error. */
  app: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It had not sent READY yet. */
  wasStarting: boolean;
  /** lodged killed it (kill()): its death is no crash, and the tenant was told why already. */
  killedOnPurpose: boolean;
  /** Why lodged killed it, when it said (kill(reason)); a pool stopping says nothing. */
  killedFor?: KillReason;
  /** The memory watchdog's word on the exit (the kernel's OOM killer struck its cgroup). */
  memoryCause?: Verdict;
  /** The request in hand when it exited, as its request line ("GET /x"); none if idle or starting. */
  request?: string;
  /** Before READY: what FAIL said, or why lodged stopped the start (did not load in time, bad frame). */
  failMessage?: string;
  /** Before READY: it sent FAIL, and so wrote the reason to the tenant's log itself. */
  sentFail?: boolean;
  /** Before READY: what it wrote to stderr (lodged's until the runtime opens the tenant's log). */
  earlyStderr?: string;
}

/**
 * What the exit means: each field is one decision worker.ts carries out, in this order
 * (reason for the status, host log, tenant log, then the request or the start failure).
 */
export interface ExitOutcome {
  /** For the status (app-record.ts); undefined: it left because it was asked to (retired, pool stopped). */
  reason?: KillReason;
  /** "exited with status 3", "was killed by SIGKILL". */
  how: string;
  /** What the exit status says, for the host's log (the tenant chooses its code: a hint, no proof). */
  meaning: ExitMeaning;
  /** A warning for the host's log, if this exit deserves one. */
  hostLog?: string;
  /** A line for the tenant's log, if the tenant was not told already. */
  tenantMessage?: string;
  /** The request in flight fails with this (502) unless a watchdog's verdict came first. */
  requestError?: LodgeError;
  /** Before READY: why the app did not start, which every request is answered with during the back-off. */
  startFailure?: string;
  /**
   * What the pool does next: `backoff` (the app did not start; hold the next try,
   * start-backoff.ts), `replace` (another worker when a request wants one).
   */
  restart: 'backoff' | 'replace';
}

/**
 * Exit codes of lodged's own programs (PROTOCOL.md, "Starting a worker"):
 * 2 the runtime saw a protocol error, 3 the app could not be loaded (FAIL sent),
 * 121 lodge-spawn could not make the process the tenant's (one line on stderr).
 */
export const EXIT_PROTOCOL = 2;
export const EXIT_APP_FAILED = 3;
export const EXIT_SPAWN_FAILED = 121;

export type ExitMeaning = 'clean' | 'signal' | 'protocol' | 'app-failed' | 'spawn-failed' | 'status';

/** The exit status read as lodged's programs use it. */
export function exitMeaning(code: number | null, signal: NodeJS.Signals | null): ExitMeaning {
  if (signal) return 'signal';
  switch (code) {
    case 0:
      return 'clean';
    case EXIT_PROTOCOL:
      return 'protocol';
    case EXIT_APP_FAILED:
      return 'app-failed';
    case EXIT_SPAWN_FAILED:
      return 'spawn-failed';
    default:
      return 'status';
  }
}

/**
 * A worker's exit, classified: the one place that decides what it means. Pure (no
 * process, no clock, no log), so every branch has a unit test
 * (test/exit-classification.test.ts) beside the real-process suites.
 */
export function classifyExit(f: ExitFacts): ExitOutcome {
  const how = f.signal ? `was killed by ${f.signal}` : `exited with status ${f.code}`;
  const meaning = exitMeaning(f.code, f.signal);
  const cause = f.memoryCause;
  // Died by itself: a signal lodged did not send, or a status other than 0. A worker
  // that leaves with 0 was asked to (its socket closed) or the app called exit(0).
  const unasked = !f.killedOnPurpose && meaning !== 'clean';
  const reason: KillReason | undefined = cause ? 'memory' : unasked && !f.wasStarting ? 'crash' : f.killedFor;

  if (f.wasStarting) {
    const early = f.earlyStderr?.trim().split('\n').pop();
    return {
      reason,
      how,
      meaning,
      hostLog: cause?.err.message,
      // FAIL wrote its reason to the tenant's log; a kill told the tenant already.
      tenantMessage:
        f.sentFail || f.killedOnPurpose
          ? undefined
          : `the app stopped while loading, before it was ready: ${cause?.tenant ?? `worker ${f.pid} ${how}`}`,
      startFailure: cause?.tenant ?? f.failMessage ?? (early ? tenantText(early) : silentStart(meaning, how)),
      restart: 'backoff',
    };
  }
  if (f.request !== undefined) {
    const err = cause?.err ?? new WorkerDiedError(`${f.app}: worker ${f.pid} ${how} during the request`);
    return {
      reason,
      how,
      meaning,
      hostLog: cause ? err.message : `worker ${f.pid} (${f.app}) ${how} during a request`,
      tenantMessage: f.killedOnPurpose ? undefined : `${f.request}: ${cause?.tenant ?? `worker ${f.pid} ${how} during the request`}`,
      requestError: err,
      restart: 'replace',
    };
  }
  if (cause || unasked) {
    const what = cause?.tenant ?? `worker ${f.pid} ${how} while idle`;
    return { reason, how, meaning, hostLog: `${f.app}: ${what}`, tenantMessage: what, restart: 'replace' };
  }
  return { reason, how, meaning, restart: 'replace' };
}

// A start that failed without a word (no FAIL, nothing on stderr): the status is all there is.
function silentStart(meaning: ExitMeaning, how: string): string {
  if (meaning === 'spawn-failed') return `the worker could not be started as the tenant (lodge-spawn ${how})`;
  if (meaning === 'app-failed') return `the app could not be loaded (worker ${how})`;
  return `worker ${how} before it was ready`;
}
