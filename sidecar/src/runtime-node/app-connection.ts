import type * as net from 'node:net';
import { connectionEvent } from './listen-catch';
import { PairEnd, PeerInfo, setPeer, socketPair } from './socket-pair';

/**
 * A lane's in-process HTTP/1.1 connection to the app's server, kept alive from one
 * request to the next as a reverse proxy keeps its connection to a backend: a new
 * connection per request (a socket pair, the server's 'connection' work, a parser on
 * each side) cost more than the app's own handling of a small request. Each lane has one
 * (lane.ts) and takes one request at a time, so the connection is either idle or carries
 * the lane's request in hand, and no request ever waits for another's response.
 *
 * A connection is used again only when the server left it open and the last exchange
 * ended cleanly on it (Exchange says which: `release(true)`); otherwise (the app answered
 * `Connection: close`, an upgrade took it, an error or an ABORT cut the exchange) it is
 * closed and the next request gets a new one. The server's own keep-alive timer may
 * close an idle connection: it does so in a timer callback, and the runtime's end sees
 * it on the same turn of the loop, before the next REQ can be read.
 */
export class AppConnection {
  private kept?: { app: PairEnd; runtime: PairEnd; server: net.Server };

  /**
   * The runtime's end of an open connection to `server`, its app end now saying `peer`
   * (the client of this request: a kept connection carries many clients' requests).
   */
  take(server: net.Server, peer: PeerInfo): PairEnd {
    const k = this.kept;
    this.kept = undefined;
    if (k && k.server === server && open(k)) {
      setPeer(k.app, k.runtime, peer);
      this.kept = k;
      return k.runtime;
    }
    if (k) k.runtime.destroy();
    const { app, runtime } = socketPair(peer);
    this.kept = { app, runtime, server };
    server.emit(connectionEvent(server), app);
    return runtime;
  }

  /** The exchange on `runtime` is over: keep its connection for the next request, or close it. */
  release(runtime: PairEnd, reusable: boolean): void {
    if (this.kept?.runtime !== runtime) {
      runtime.destroy();
      return;
    }
    if (reusable && open(this.kept)) return;
    this.kept = undefined;
    runtime.destroy();
  }
}

// Neither end closed nor ended its output: an end's EOF is its writable side's end, seen
// at once there, while the other end's reader sees it only when it reads.
function open(k: { app: PairEnd; runtime: PairEnd }): boolean {
  return [k.app, k.runtime].every((end) => !end.destroyed && end.writable && !end.writableEnded);
}
