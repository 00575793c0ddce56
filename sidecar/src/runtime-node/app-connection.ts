import type * as net from 'node:net';
import { connectionEvent } from './listen-catch';
import { ResponseParser } from './response-parser';
import { PairEnd, PeerInfo, setPeer, socketPair } from './socket-pair';

/** Who reads the runtime's end of the connection while a request is on it (Exchange). */
export interface ConnectionUser {
  /** Bytes from the app's server. */
  data(chunk: Buffer): void;
  /** The app ended its side (EOF). */
  ended(): void;
  /** The connection closed (reset, or destroyed by either side). */
  closed(): void;
  /** The app's side read what was written: the request body may come again. */
  drained(): void;
}

interface Kept {
  app: PairEnd;
  runtime: PairEnd;
  server: net.Server;
  user?: ConnectionUser;
}

/**
 * A lane's in-process HTTP/1.1 connection to the app's server, kept alive from one
 * request to the next as a reverse proxy keeps its connection to a backend: a new
 * connection per request (a socket pair, the server's 'connection' work, a parser on
 * the server's side) cost more than the app's own handling of a small request. Each lane has one
 * (lane.ts) and takes one request at a time, so the connection is either idle or carries
 * the lane's request in hand, and no request ever waits for another's response.
 *
 * The connection's listeners are set once, when it opens, and pass what comes to the
 * request on it (`take`'s user): a request costs no listener of its own. A connection is
 * used again only when the server left it open and the last exchange ended cleanly on it
 * (Exchange says which: `release(true)`); otherwise (the app answered `Connection:
 * close`, an upgrade took it, an error or an ABORT cut the exchange) it is closed and the
 * next request gets a new one. Anything the app sends while no request is on it (a
 * keep-alive timeout's EOF, stray bytes) closes it too.
 */
export class AppConnection {
  private kept?: Kept;
  /** Reads the answer to the request on the connection: one at a time, so one for the lane. */
  readonly parser = new ResponseParser();

  /**
   * The runtime's end of an open connection to `server`, its app end now saying `peer`
   * (the client of this request: a kept connection carries many clients' requests),
   * whose events go to `user` until `release`.
   */
  take(server: net.Server, peer: PeerInfo, user: ConnectionUser): PairEnd {
    const k = this.kept;
    if (k && k.server === server && open(k)) {
      setPeer(k.app, k.runtime, peer);
      k.user = user;
      return k.runtime;
    }
    this.kept = undefined;
    if (k) k.runtime.destroy();
    const { app, runtime } = socketPair(peer);
    const fresh: Kept = { app, runtime, server, user };
    this.kept = fresh;
    runtime.on('data', (chunk: Buffer) => (fresh.user ? fresh.user.data(chunk) : this.drop(fresh)));
    runtime.on('end', () => (fresh.user ? fresh.user.ended() : this.drop(fresh)));
    runtime.on('close', () => (fresh.user ? fresh.user.closed() : this.drop(fresh)));
    runtime.on('drain', () => fresh.user?.drained());
    // A write after the app's side is gone: what it would say, 'close' says.
    runtime.on('error', () => undefined);
    server.emit(connectionEvent(server), app);
    return runtime;
  }

  /** The exchange on `runtime` is over: keep its connection for the next request, or close it. */
  release(runtime: PairEnd, reusable: boolean): void {
    const k = this.kept;
    if (k?.runtime !== runtime) {
      runtime.destroy();
      return;
    }
    k.user = undefined;
    if (reusable && open(k)) return;
    this.drop(k);
  }

  private drop(k: Kept): void {
    if (this.kept === k) this.kept = undefined;
    k.user = undefined;
    k.runtime.destroy();
  }
}

/**
 * The worker's connections to the app's server not carrying a request now. A request
 * takes the one given back last (the warmest: one after another, requests meet the same
 * connection whether lodged's lane or the app's socket brought them), or a new one; as
 * many exist as the most requests the worker has held at once.
 */
const idle: AppConnection[] = [];

export function takeConnection(): AppConnection {
  return idle.pop() ?? new AppConnection();
}

export function giveConnection(c: AppConnection): void {
  idle.push(c);
}

// Neither end closed nor ended its output: an end's EOF is its writable side's end, seen
// at once there, while the other end's reader sees it only when it reads.
function open(k: Kept): boolean {
  return !k.app.destroyed && k.app.writable && !k.app.writableEnded && !k.runtime.destroyed && k.runtime.writable && !k.runtime.writableEnded;
}
