import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import type { PeerInfo } from './socket-pair';

/** Who a handed socket tells what the app did with it (handed-exchange.ts). */
export interface SocketOwner {
  /** Bytes the app's response wrote, in order. false: the lane's socket is full (wait for `drained`). */
  wrote(data: string | Uint8Array, encoding: BufferEncoding | undefined): boolean;
  /** The app destroyed the socket (`res.destroy()`, `req.socket.destroy()`). */
  destroyed(): void;
  /** The request's reader is full (`req.push` said so) or wants more. */
  pauseInput(): void;
  resumeInput(): void;
  /** `setTimeout`'s idle time passed. */
  timedOut(): void;
}

const HIGH_WATER = 16 * 1024;

/**
 * What the request and response a handed exchange makes (handed-exchange.ts) take for
 * their socket: `req.socket` and `res.socket` of one request. No byte goes through a
 * stream: what the response writes is passed to the owner as it was written (the head
 * first, as the latin-1 text Node made of it).
 *
 * It has what Node's http code and apps use of a net.Socket: cork/uncork and the
 * `_writableState.corked` that OutgoingMessage.end sets, write/end/destroy, the
 * peer's address (the client's, from REQ), `encrypted` under TLS, pause/resume (the
 * request body's back-pressure, IncomingMessage._read calls resume) and an idle timer.
 */
export class HandedSocket extends EventEmitter {
  remoteAddress: string;
  remotePort: number;
  remoteFamily: string;
  localAddress: string;
  localPort: number;
  encrypted?: boolean;
  readonly connecting = false;
  readonly pending = false;
  readonly readableHighWaterMark = HIGH_WATER;
  readonly writableHighWaterMark = HIGH_WATER;
  readonly parser = null;
  /** The response on it (Node's assignSocket/detachSocket set it). */
  _httpMessage: unknown = null;
  _paused = false;
  _hadError = false;
  readonly _writableState = { corked: 0, needDrain: false };
  destroyed = false;
  readable = true;
  writable = true;
  bytesWritten = 0;
  private closeSaid = false;
  private idleMs = 0;
  private idleTimer?: NodeJS.Timeout;

  constructor(
    readonly server: net.Server,
    peer: PeerInfo,
    private readonly owner: SocketOwner,
  ) {
    super();
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.remoteFamily = peer.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
    if (peer.encrypted) this.encrypted = true;
  }

  get writableCorked(): number {
    return this._writableState.corked;
  }

  get writableLength(): number {
    return 0;
  }

  get writableNeedDrain(): boolean {
    return this._writableState.needDrain;
  }

  get writableEnded(): boolean {
    return !this.writable;
  }

  // Counted for what Node's http code reads of them, and nothing more: every write goes
  // to the owner at once (it is not a system call: the lane's socket batches a turn's
  // frames itself), so write() can say at once whether the lane is full, as a socket does.
  cork(): void {
    this._writableState.corked++;
  }

  uncork(): void {
    const w = this._writableState;
    if (w.corked > 0) w.corked--;
  }

  write(data: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.destroyed || !this.writable) {
      if (cb) process.nextTick(cb, new Error('write after the socket ended'));
      return false;
    }
    this.touch();
    this.bytesWritten += data.length;
    if (!this.owner.wrote(data, encoding)) this._writableState.needDrain = true;
    // As a stream calls back: after the write returned, never inside it.
    if (cb) process.nextTick(cb, null);
    return !this._writableState.needDrain;
  }

  end(data?: string | Uint8Array | (() => void), encoding?: BufferEncoding | (() => void), cb?: () => void): this {
    if (typeof data === 'function') return this.end(undefined, undefined, data);
    if (typeof encoding === 'function') return this.end(data, undefined, encoding);
    if (data !== undefined && data.length) this.write(data, encoding);
    this.writable = false;
    if (cb) process.nextTick(cb);
    return this;
  }

  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.readable = this.writable = false;
    if (err) this._hadError = true;
    this.stopTimer();
    this.owner.destroyed();
    this.gone(err);
    return this;
  }

  destroySoon(): void {
    this.destroy();
  }

  /** The exchange is over (answered or the client left): 'close' as a connection's, once. */
  gone(err?: Error): void {
    if (this.closeSaid) return;
    this.closeSaid = true;
    this.destroyed = true;
    this.readable = this.writable = false;
    this.stopTimer();
    process.nextTick(() => {
      if (err && this.listenerCount('error') > 0) this.emit('error', err);
      this.emit('close', err !== undefined);
    });
  }

  /** The lane's socket has room again. */
  drained(): void {
    if (!this._writableState.needDrain) return;
    this._writableState.needDrain = false;
    this.emit('drain');
  }

  pause(): this {
    this.owner.pauseInput();
    return this;
  }

  resume(): this {
    this.owner.resumeInput();
    return this;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.stopTimer();
    this.idleMs = ms;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this.touch();
    return this;
  }

  // What a server or an app may call on a connection, and that means nothing without one.
  setNoDelay(): this { return this; } // prettier-ignore
  setKeepAlive(): this { return this; } // prettier-ignore
  setEncoding(): this { return this; } // prettier-ignore
  ref(): this { return this; } // prettier-ignore
  unref(): this { return this; } // prettier-ignore

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.remoteFamily, port: this.localPort };
  }

  // Every write restarts the idle timer (its object is kept and refreshed).
  private touch(): void {
    if (this.idleMs <= 0 || this.destroyed) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        this.emit('timeout');
        this.owner.timedOut();
      }, this.idleMs);
      this.idleTimer.unref();
    }
  }

  private stopTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
