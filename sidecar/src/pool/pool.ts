import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppStartError, QueueFullError } from '../errors';
import { log } from '../log';
import { AppSpec } from './app-spec';
import { Exchange } from './exchange';
import { Identity } from './ownership';
import { SpawnOptions, Worker } from './worker';

export interface PoolOptions extends SpawnOptions {
  maxQueue: number;
  queueTimeoutMs: number;
}

interface Waiter {
  ex: Exchange;
  frames: Buffer[];
  timer: NodeJS.Timeout;
}

/** How a start failure holds back the next attempt: doubling, up to a minute. */
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 60_000;

/**
 * The workers of one app (one app directory, one owner). One request per worker at
 * a time; up to `limits.processes` workers, started on demand; past that, a bounded
 * FIFO queue; past that, 503.
 *
 *   waiting requests ──▶ idle worker (LIFO: the warmest) ──▶ busy ──END──▶ idle
 *                   └──▶ spawn while starting < waiting and workers < max
 */
export class Pool {
  readonly workers = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly queue: Waiter[] = [];
  private starting = 0;
  private failure?: { message: string; until: number; mtime: number };
  private backoffMs = 0;
  lastUsed = Date.now();
  served = 0;

  constructor(
    readonly spec: AppSpec,
    readonly identity: Identity,
    private readonly opts: PoolOptions,
  ) {}

  get name(): string {
    return `${this.spec.root}/${this.spec.entry}`;
  }

  /** Finds a worker for the request now, or queues it, or fails it. */
  acquire(ex: Exchange, frames: Buffer[]): void {
    this.lastUsed = Date.now();
    const w = this.idle.pop();
    if (w) return w.serve(ex, frames);
    if (this.failure && this.liveWorkers() === 0) {
      if (Date.now() < this.failure.until && this.entryMtime() === this.failure.mtime) {
        return ex.fail(new AppStartError(this.failure.message));
      }
      this.failure = undefined;
    }
    if (this.queue.length >= this.opts.maxQueue + this.spawnRoom()) {
      const err = new QueueFullError(`${this.name}: all ${this.spec.limits.processes} workers busy and ${this.queue.length} requests waiting`);
      return ex.fail(err);
    }
    const timer = setTimeout(() => this.expire(waiter), this.opts.queueTimeoutMs);
    const waiter: Waiter = { ex, frames, timer };
    this.queue.push(waiter);
    this.maybeSpawn();
  }

  /** The request's client left while it waited. */
  cancel(ex: Exchange): void {
    const i = this.queue.findIndex((q) => q.ex === ex);
    if (i >= 0) {
      clearTimeout(this.queue[i].timer);
      this.queue.splice(i, 1);
    }
  }

  /** Stops every worker (lodged is shutting down or the app went away). */
  close(): void {
    for (const q of this.queue.splice(0)) clearTimeout(q.timer);
    for (const w of this.workers) w.kill();
  }

  /** Retires idle workers that have had nothing to do for the app's LodgeIdle. */
  reapIdle(now: number): void {
    if (now - this.lastUsed < this.spec.limits.idle * 1000) return;
    for (const w of this.idle.splice(0)) w.retire();
  }

  liveWorkers(): number {
    return this.workers.size - this.starting;
  }

  private spawnRoom(): number {
    return Math.max(0, this.spec.limits.processes - this.workers.size) + this.starting;
  }

  private maybeSpawn(): void {
    while (this.starting < this.queue.length && this.workers.size < this.spec.limits.processes) {
      this.spawn();
    }
  }

  private spawn(): void {
    this.starting++;
    const w = new Worker(this.spec, this.identity, this.opts, {
      ready: (w) => {
        this.starting--;
        this.backoffMs = 0;
        log.info(`${this.name}: worker ${w.pid} ready (uid ${this.identity.uid})`);
        this.free(w);
      },
      free: (w) => {
        this.served++;
        this.free(w);
      },
      startFailed: (w, message) => this.startFailed(w, message),
      exited: (w) => this.exited(w),
    });
    this.workers.add(w);
  }

  private free(w: Worker): void {
    const next = this.queue.shift();
    if (next) {
      clearTimeout(next.timer);
      w.serve(next.ex, next.frames);
    } else {
      this.idle.push(w);
    }
  }

  private startFailed(w: Worker, message: string): void {
    this.starting--;
    this.workers.delete(w);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs ? this.backoffMs * 2 : BACKOFF_FIRST_MS);
    log.error(`${this.name}: app failed to start (uid ${this.identity.uid}, worker ${w.pid}): ${message}; next try in ${this.backoffMs / 1000} s or when the file changes`);
    this.failure = { message: `${this.name} failed to start: ${message}`, until: Date.now() + this.backoffMs, mtime: this.entryMtime() };
    if (this.liveWorkers() > 0) return; // the running workers keep serving the queue
    for (const q of this.queue.splice(0)) {
      clearTimeout(q.timer);
      q.ex.fail(new AppStartError(this.failure.message));
    }
  }

  private exited(w: Worker): void {
    this.workers.delete(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    if (!this.failure) this.maybeSpawn();
  }

  private expire(waiter: Waiter): void {
    const i = this.queue.indexOf(waiter);
    if (i < 0) return;
    this.queue.splice(i, 1);
    const err = new QueueFullError(`${this.name}: no worker became free within ${this.opts.queueTimeoutMs / 1000} s`);
    waiter.ex.fail(err);
  }

  private entryMtime(): number {
    try {
      return fs.statSync(path.join(this.spec.root, this.spec.entry)).mtimeMs;
    } catch {
      return 0; // a missing file counts as a change once it comes back
    }
  }
}
