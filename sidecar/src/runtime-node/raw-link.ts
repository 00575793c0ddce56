import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import * as util from 'node:util';
import { FdWatch, READABLE, WRITABLE, WorkerAddon, workerNative } from './worker-native';

const EAGAIN = os.constants.errno.EAGAIN;

/** Bytes queued past which write() says to wait for 'drain' (net.Socket's own mark). */
const HIGH_WATER = 16 * 1024;

/** One read's most; what it gets is copied out, so one buffer serves every link. */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A connection mod_lodge made to the app's socket, read and written on its descriptor as
 * it is (the `lodge_worker` addon), for a lane of one request (lane.ts). It is what a lane
 * uses of a `net.Socket` — 'data', 'end', 'error', 'close' and 'drain'; write, cork, pause,
 * end, destroy — without a socket's making and ending, which cost more system calls per
 * request than the request itself (docs/hot-path.md).
 *
 * start() reads what is already there, which is usually the whole request: mod_lodge sends
 * it right after it connects. A request answered in that same turn of the loop is read,
 * answered and closed with no watch at all. Otherwise the descriptor is watched from the
 * next turn on, while input flows (the end of file is mod_lodge gone) or output waits.
 *
 * end() sends what is queued and then calls back; it does not half-close: the descriptor
 * closes at destroy(), which is the lane's next step.
 */
export class RawLink extends EventEmitter {
  private watch?: FdWatch;
  /** The events the watch is started for. */
  private watching = 0;
  private started = false;
  /** A turn of the loop has passed since start(): reading waits on the watch. */
  private settled = false;
  private flowing = true;
  private readEnded = false;
  private corks = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private needDrain = false;
  /** The peer's queue was full at the last send: the rest waits for the watch. */
  private blocked = false;
  /** end()'s callback, once the queue is out. */
  private ending?: () => void;
  private unrefd = false;
  destroyed = false;
  writableEnded = false;

  constructor(
    private readonly fd: number,
    private readonly native: WorkerAddon = workerNative(),
  ) {
    super();
  }

  /** Reading begins: what is there now comes as 'data' before this returns. */
  start(): void {
    if (this.started || this.destroyed) return;
    this.started = true;
    this.readSome();
    setImmediate(() => {
      this.settled = true;
      this.arm();
    });
  }

  /** The peer has closed its end (looked at now, nothing read). */
  peerGone(): boolean {
    if (this.readEnded || this.destroyed) return true;
    const n = this.native.recv(this.fd, scratch.subarray(0, 1), true);
    return n === 0 || (n < 0 && n !== -EAGAIN);
  }

  write(chunk: Buffer): boolean {
    if (this.destroyed || this.writableEnded) return false;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.corks === 0) this.flush();
    if (this.queued < HIGH_WATER) return true;
    this.needDrain = true;
    return false;
  }

  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks > 0 && --this.corks === 0) this.flush();
  }

  pause(): void {
    this.flowing = false;
    this.arm();
  }

  /** More input is read from the next turn on (never inside the caller's own turn). */
  resume(): void {
    this.flowing = true;
    this.arm();
  }

  end(cb?: () => void): void {
    if (this.writableEnded || this.destroyed) return;
    this.writableEnded = true;
    this.corks = 0;
    this.ending = cb ?? (() => undefined);
    this.flush();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue = [];
    this.queued = 0;
    // The watch first: libuv must drop the descriptor before it is closed and reused.
    this.watch?.close();
    this.watch = undefined;
    this.native.close(this.fd);
    process.nextTick(() => this.emit('close'));
  }

  ref(): void {
    this.unrefd = false;
    this.watch?.ref(true);
  }

  unref(): void {
    this.unrefd = true;
    this.watch?.ref(false);
  }

  private readSome(): void {
    while (this.flowing && !this.readEnded && !this.destroyed) {
      const n = this.native.recv(this.fd, scratch);
      if (n > 0) {
        this.emit('data', Buffer.from(scratch.subarray(0, n)));
        // A short read took all there was; the watch says when more comes.
        if (n < scratch.length) return;
        continue;
      }
      if (n === 0) {
        this.readEnded = true;
        this.emit('end');
        return;
      }
      if (n !== -EAGAIN) this.fail(n, 'recv');
      return;
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.destroyed) {
      const n = this.native.send(this.fd, this.queue);
      if (n === -EAGAIN) break;
      if (n < 0) return this.fail(n, 'send');
      this.consume(n);
      if (n === 0) break;
    }
    if (this.destroyed) return;
    this.blocked = this.queue.length > 0;
    if (!this.blocked) {
      if (this.needDrain) {
        this.needDrain = false;
        process.nextTick(() => this.destroyed || this.emit('drain'));
      }
      if (this.ending) {
        const cb = this.ending;
        this.ending = undefined;
        process.nextTick(cb);
      }
    }
    this.arm();
  }

  private consume(n: number): void {
    this.queued -= n;
    while (this.queue.length > 0 && this.queue[0].length <= n) n -= this.queue.shift()!.length;
    if (n > 0) this.queue[0] = this.queue[0].subarray(n);
  }

  // The watch is made only when something must wait: most requests never need one.
  private arm(): void {
    if (this.destroyed) return;
    let want = 0;
    if (this.started && this.settled && this.flowing && !this.readEnded) want |= READABLE;
    if (this.blocked) want |= WRITABLE;
    if (want === this.watching) return;
    if (!this.watch) {
      this.watch = new this.native.FdWatch(this.fd, (status, events) => this.ready(status, events));
      if (this.unrefd) this.watch.ref(false);
    }
    this.watching = want;
    this.watch.start(want);
  }

  private ready(status: number, events: number): void {
    if (status < 0) return this.fail(status, 'poll');
    if (events & WRITABLE) this.flush();
    if (events & READABLE) this.readSome();
    this.arm();
  }

  // As a net.Socket fails: 'error', then 'close'.
  private fail(negErrno: number, syscall: string): void {
    const err = Object.assign(new Error(`${syscall}: ${util.getSystemErrorName(negErrno)}`), {
      code: util.getSystemErrorName(negErrno),
      syscall,
    });
    process.nextTick(() => this.emit('error', err));
    this.destroy();
  }
}
