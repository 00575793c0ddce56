import { Duplex } from 'node:stream';

/** What the app's side of a request's connection says of its peer (from the REQ pairs). */
export interface PeerInfo {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** The client spoke TLS to Apache (HTTPS=on): as a TLS socket says, for `req.protocol`. */
  encrypted: boolean;
}

/**
 * One end of an in-process connection. The app's server gets one end as its
 * 'connection' (it parses the request and writes its response with Node's own HTTP
 * code), the runtime the other (exchange.ts writes the request and reads the answer):
 * no byte leaves the process and no port is opened. A write is handed to the other end's readable side; its callback waits until
 * that side has room again, so each direction has back-pressure as a socket has.
 *
 * The socket calls a server makes (setTimeout, setNoDelay, setKeepAlive, ref, address,
 * destroySoon) are here so that http, https and net servers take it as a net.Socket.
 */
export class PairEnd extends Duplex {
  other!: PairEnd;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  localAddress?: string;
  localPort?: number;
  encrypted?: boolean;
  readonly connecting = false;
  private waiting?: () => void;
  private idleMs = 0;
  private idleTimer?: NodeJS.Timeout;

  constructor() {
    super({ allowHalfOpen: true });
  }

  _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.touch();
    const other = this.other;
    if (other.destroyed) return done();
    if (other.push(chunk)) return done();
    // The other end's reader is full: this write completes when it reads again.
    this.waiting = done;
  }

  _final(done: (err?: Error | null) => void): void {
    if (!this.other.destroyed) this.other.push(null);
    done();
  }

  _read(): void {
    const w = this.other.waiting;
    this.other.waiting = undefined;
    w?.();
  }

  _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
    // An end closed before it ended its output is a reset, which the peer sees at once;
    // one that ended it lets the peer read what is still on its way (it gets EOF).
    const other = this.other;
    if (!other.destroyed && !this.writableFinished) process.nextTick(() => other.destroy());
    done(err);
  }

  /** net.Socket's idle timer: 'timeout' after ms without a byte either way. */
  setTimeout(ms: number, cb?: () => void): this {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.idleMs = ms;
    if (cb) this.once('timeout', cb);
    this.touch();
    return this;
  }

  // Every read and write: the timer is restarted, not made anew (a server keeps one set
  // on a kept connection between requests, and each request's bytes touch it).
  private touch(): void {
    if (this.idleMs > 0 && !this.destroyed) {
      if (this.idleTimer) this.idleTimer.refresh();
      else {
        this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
        this.idleTimer.unref();
      }
    } else if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null) this.touch();
    return super.push(chunk, encoding);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress ?? '127.0.0.1', family: this.remoteFamily ?? 'IPv4', port: this.localPort ?? 0 };
  }

  /** What a server calls after its last response on a connection: end, then close. */
  destroySoon(): void {
    if (this.writableFinished) this.destroy();
    else {
      this.once('finish', () => this.destroy());
      this.end();
    }
  }
}

/** A connection: the app's end (with the client's address) and the runtime's end. */
export function socketPair(peer: PeerInfo): { app: PairEnd; runtime: PairEnd } {
  const app = new PairEnd();
  const runtime = new PairEnd();
  app.other = runtime;
  runtime.other = app;
  setPeer(app, runtime, peer);
  return { app, runtime };
}

/** Who each end says its peer is: set again for each request on a kept connection. */
export function setPeer(app: PairEnd, runtime: PairEnd, peer: PeerInfo): void {
  app.remoteAddress = peer.remoteAddress;
  app.remotePort = peer.remotePort;
  app.remoteFamily = peer.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
  app.localAddress = peer.localAddress;
  app.localPort = peer.localPort;
  app.encrypted = peer.encrypted || undefined;
  runtime.remoteAddress = peer.localAddress;
  runtime.remotePort = peer.localPort;
}
