import * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { FRAME_CHUNK_MAX, MESSAGE_TEXT_MAX } from '../protocol/constants';
import { END_FRAME, FrameType, encodeError, encodeFrame, encodeHead } from '../protocol/frames';
import { AppConnection } from './app-connection';
import { log } from './process-io';
import { RequestHead } from './request-head';
import type { PairEnd } from './socket-pair';

/** Where an exchange's frames go (lodged's socket, or mod_lodge's while it borrows it). */
export interface FrameOut {
  /** false: the socket's buffer is full; wait for onDrain before sending more. */
  send(frame: Buffer): boolean;
  onDrain(fn: () => void): void;
  /** Stop and restart reading lodged's socket: the request body waits in the kernel. */
  pauseInput(): void;
  resumeInput(): void;
}

// Headers of the in-process connection, not of the response (mod_lodge drops the
// hop-by-hop ones too; these are ours alone): the body goes out de-chunked in DATA frames.
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/**
 * After the client closed a tunnel (BODY_END), how long the app has to close its end
 * before the runtime does: well inside mod_lodge's TUNNEL_GRACE, so that the END is
 * there before mod_lodge would hand the worker back STUCK (and lodged kill it).
 */
const TUNNEL_CLOSE_WAIT_MS = 1000;

/**
 * One request, fed into the app's server on a real HTTP/1.1 connection: the server has
 * an in-process socket (app-connection.ts: 'connection', or 'secureConnection' for an
 * https server, kept alive across requests) and reads the request from it with Node's
 * own parser; the runtime writes that request with
 * Node's own http client (method, URL, headers, the body as BODY frames come) and reads
 * the server's answer with the client's parser, so neither direction is parsed or written
 * by hand. The answer goes out as HEAD, DATA… and END, or ERROR. A WebSocket handshake
 * the app answers with 101 becomes a tunnel (PROTOCOL.md, "The tunnel"): BODY frames are
 * the client's bytes, DATA the app's, until either side ends.
 *
 * `done(status)` runs once, when the exchange has sent its END or ERROR.
 */
export class Exchange {
  private readonly req: http.ClientRequest;
  private readonly conn: PairEnd;
  private tunnel?: Duplex;
  private headSent = false;
  /** The response ended as HTTP/1.1 ends one on a connection that stays open. */
  private clean = false;
  private finished = false;
  private status = 0;
  /**
   * Bytes of a Content-Length body still to come. The request is ended with its last
   * byte, not at BODY_END: the app may answer as soon as it has the whole body, and an
   * answer that comes while the request is still open costs the kept connection.
   */
  private bodyLeft?: number;

  constructor(
    private readonly head: RequestHead,
    server: net.Server,
    private readonly connection: AppConnection,
    private readonly out: FrameOut,
    private readonly done: (status: number) => void,
  ) {
    const runtime = connection.take(server, head.peer);
    this.conn = runtime;
    this.req = http.request({
      method: head.method,
      path: head.url,
      headers: head.headers,
      setHost: false,
      createConnection: () => runtime,
    } as http.RequestOptions);
    this.req.on('response', (res) => this.onResponse(res));
    this.req.on('upgrade', (res, socket, rest) => this.onUpgrade(res, socket, rest));
    this.req.on('error', (err) => this.onError(err));
    // A handshake has no body: its headers go now, and the app's 101 opens the tunnel.
    if (head.tunnel) this.req.flushHeaders();
    // A request without a body is whole now: the app's answer may come before BODY_END
    // does, and the connection is still fit for the next request.
    else if (head.headers['Content-Length'] === undefined && head.headers['Transfer-Encoding'] === undefined) this.req.end();
    else if (head.headers['Transfer-Encoding'] === undefined) this.bodyLeft = Number(head.headers['Content-Length']);
  }

  /** A BODY frame's bytes: the request body (or, in a tunnel, the client's bytes). */
  body(bytes: Buffer): void {
    if (this.finished) return;
    if (this.tunnel) {
      if (!this.tunnel.write(bytes)) this.holdInput(this.tunnel);
      return;
    }
    if (this.req.writableEnded) return;
    if (!this.req.write(bytes)) this.holdInput(this.req);
    if (this.bodyLeft !== undefined && (this.bodyLeft -= bytes.length) <= 0) this.req.end();
  }

  /** BODY_END: the request body is whole (in a tunnel: the client left). */
  bodyEnd(): void {
    if (this.finished) return;
    if (this.tunnel) {
      const t = this.tunnel;
      t.end();
      setTimeout(() => t.destroy(), TUNNEL_CLOSE_WAIT_MS).unref();
      return;
    }
    if (!this.req.writableEnded) this.req.end();
  }

  /** ABORT: the client is gone. The app's connection closes (its request sees 'close'); END says the worker stopped. */
  abort(): void {
    if (this.finished) return;
    this.finish(END_FRAME);
  }

  private holdInput(w: NodeJS.WritableStream): void {
    this.out.pauseInput();
    w.once('drain', () => this.out.resumeInput());
  }

  private onResponse(res: http.IncomingMessage): void {
    if (this.finished) return;
    const headers: Array<[string, string]> = [];
    const raw = res.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (!CONNECTION_HEADERS.has(raw[i].toLowerCase())) headers.push([raw[i], raw[i + 1]]);
    }
    this.status = res.statusCode ?? 502;
    this.sendHead(this.status, headers);
    this.stream(res, () => {
      // The client's parser saw the whole response and the server keeping the connection
      // (no `Connection: close`), and the whole request went to the app: the next request
      // may follow on the same connection. An app that answered before reading all of
      // the body gets a new one (the rest of that body is no request).
      this.clean = !this.head.tunnel && this.req.shouldKeepAlive && this.req.writableFinished;
      this.finish(END_FRAME);
    });
    res.on('aborted', () => this.cut('the app closed the connection in the middle of its response'));
    res.on('error', (err) => this.cut(`the app's response broke off: ${err.message}`));
  }

  private onUpgrade(res: http.IncomingMessage, socket: Duplex, rest: Buffer): void {
    if (this.finished) {
      socket.destroy();
      return;
    }
    const headers: Array<[string, string]> = [];
    const raw = res.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i], raw[i + 1]]);
    this.status = 101;
    this.tunnel = socket;
    this.sendHead(101, headers);
    if (rest.length) this.sendData(rest);
    this.stream(socket, () => this.finish(END_FRAME));
    socket.on('close', () => this.finish(END_FRAME));
    socket.on('error', () => this.finish(END_FRAME));
  }

  // The app's bytes out as DATA frames, paused while lodged's socket is full.
  private stream(from: NodeJS.ReadableStream & { pause(): unknown; resume(): unknown }, ended: () => void): void {
    from.on('data', (chunk: Buffer) => {
      if (this.finished) return;
      if (!this.sendData(chunk)) {
        from.pause();
        this.out.onDrain(() => from.resume());
      }
    });
    from.on('end', ended);
  }

  private sendHead(status: number, headers: Array<[string, string]>): void {
    this.headSent = true;
    this.out.send(encodeHead(status, headers));
  }

  private sendData(chunk: Buffer): boolean {
    let ok = true;
    for (let at = 0; at < chunk.length; at += FRAME_CHUNK_MAX) {
      ok = this.out.send(encodeFrame(FrameType.DATA, chunk.subarray(at, at + FRAME_CHUNK_MAX)));
    }
    return ok;
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (this.finished) return;
    const why =
      err.code === 'ECONNRESET'
        ? 'the app closed the connection without answering'
        : err.code?.startsWith('HPE_')
          ? `the app's answer is not HTTP (${err.message})`
          : `the request could not be given to the app: ${err.message}`;
    this.cut(why);
  }

  // Before HEAD: a 502 page; after it, ERROR cuts the response off, so the client sees
  // it end short, never a complete wrong one.
  private cut(why: string): void {
    if (this.finished) return;
    log(`${this.head.line}: ${why}`);
    const msg = Buffer.from(`${this.head.line}: ${why}`).subarray(0, MESSAGE_TEXT_MAX).toString();
    this.status = this.headSent ? this.status : 502;
    this.finish(encodeError(502, 0, msg));
  }

  private finish(last: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.out.send(last);
    // The rest of the body (if the app answered before reading it) is not the app's any more.
    this.req.removeAllListeners('drain');
    this.tunnel?.destroy();
    this.connection.release(this.conn, this.clean);
    this.out.resumeInput();
    this.done(this.status);
  }
}
