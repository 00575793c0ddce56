import { LodgeError } from '../errors';

/**
 * The side of one request that faces mod_lodge, as a worker sees it. Implemented by
 * server/apache-conn.ts; kept as an interface so the pool knows nothing of sockets
 * towards Apache.
 */
export interface Exchange {
  /** A worker was found: forward the held request frames to it. */
  attach(worker: WorkerHandle): void;
  /** Response bytes from the worker, as they came; `last`: they end with END or ERROR. */
  fromWorker(data: Buffer, last: boolean): void;
  /** The request cannot be (or stop being) served: answer with err's status. */
  fail(err: LodgeError): void;
  /** Let the worker apply back-pressure to the Apache side. */
  pauseApache(): void;
  resumeApache(): void;
}

export interface WorkerHandle {
  readonly pid: number;
  /** false: the worker's socket is full; wait for resumeApache(). */
  send(frames: Buffer[]): boolean;
  /** The client went away: tell the worker, then drop what it still sends. */
  abort(): void;
  pauseOutput(): void;
  resumeOutput(): void;
}
