import { LodgeError } from '../errors';

/**
 * The side of one request that faces mod_lodge, as a worker sees it. Implemented by
 * server/apache-conn.ts; kept as an interface so the pool knows nothing of sockets
 * towards Apache.
 */
export interface Exchange {
  /**
   * mod_lodge takes the worker's socket itself (APP flag BORROW): the worker gets the
   * held frames from lodged, then grant() lends its socket until mod_lodge's RELEASE.
   */
  readonly borrows: boolean;
  /** A worker was found: forward the held request frames to it. */
  attach(worker: WorkerHandle): void;
  /** The held frames are in the worker's socket: lend it (GRANT). */
  grant(worker: WorkerHandle): void;
  /** Response bytes from the worker, as they came; `last`: they end with END or ERROR. */
  fromWorker(data: Buffer, last: boolean): void;
  /**
   * The request cannot be (or stop being) served: answer with err's status.
   * `midFrame`: part of a frame was already forwarded, so no frame can follow; the
   * connection to mod_lodge is closed instead (it cuts the client's response).
   */
  fail(err: LodgeError, midFrame?: boolean): void;
  /** Let the worker apply back-pressure to the Apache side. */
  pauseApache(): void;
  resumeApache(): void;
}

export interface WorkerHandle {
  readonly pid: number;
  /** lodged's end of the worker's socket, which GRANT lends. */
  readonly fd: number;
  /** The app's LodgeTimeout, after the host's caps. */
  readonly timeoutSecs: number;
  /** mod_lodge hands a borrowed worker back (a Release verdict), or went away holding it. */
  takeBack(ex: Exchange, verdict: number | 'gone'): void;
  /** false: the worker's socket is full; wait for resumeApache(). */
  send(frames: Buffer[]): boolean;
  /** The client went away: tell the worker, then drop what it still sends. */
  abort(): void;
  pauseOutput(): void;
  resumeOutput(): void;
}
