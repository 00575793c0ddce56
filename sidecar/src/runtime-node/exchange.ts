import type * as net from 'node:net';
import { FRAME_CHUNK_MAX } from '../protocol/constants';
import { END_FRAME, FrameType, encodeFrame } from '../protocol/frames';
import { AppConnection, ConnectionUser } from './app-connection';
import { appFailed, headFrame, isConnectionHeader } from './head-frame';
import { LAST_CHUNK, chunk, requestHeadText } from './request-bytes';
import { RequestHead } from './request-head';
import { ResponseParser, ResponseSink } from './response-parser';
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

/**
 * After the client closed a tunnel (BODY_END), how long the app has to close its end
 * before the runtime does: well inside mod_lodge's TUNNEL_GRACE, so that the END is
 * there before mod_lodge would hand the worker back STUCK (and lodged kill it).
 */
const TUNNEL_CLOSE_WAIT_MS = 1000;

/** How the request body goes to the app. */
const enum Body {
  /** None, or all of it written. */
  Done,
  /** `bodyLeft` bytes of a Content-Length body still to come. */
  Length,
  /** As chunks, until BODY_END. */
  Chunked,
  /** A WebSocket handshake: what comes after its head is the client's, once the app said 101. */
  Tunnel,
}

/**
 * One request, fed into the app's server on a real HTTP/1.1 connection: the server has
 * an in-process socket (app-connection.ts: 'connection', or 'secureConnection' for an
 * https server, kept alive across requests) and reads the request from it with Node's
 * own parser, as from any client. The runtime writes that request as Node's http client
 * would (request-bytes.ts: method, URL, headers, then the body as BODY frames come) and
 * reads the server's answer as a client does (response-parser.ts). The answer goes out
 * as HEAD, DATA… and END, or ERROR. A WebSocket handshake the app answers with 101
 * becomes a tunnel (PROTOCOL.md, "The tunnel"): BODY frames are the client's bytes, DATA
 * the app's, until either side ends.
 *
 * `done(status)` runs once, when the exchange has sent its END or ERROR.
 */
export class Exchange implements ConnectionUser, ResponseSink {
  private readonly conn: PairEnd;
  private readonly parser: ResponseParser;
  private tunnel = false;
  private headSent = false;
  /** The response ended as HTTP/1.1 ends one on a connection that stays open. */
  private clean = false;
  private finished = false;
  private status = 0;
  private bodyMode: Body;
  /**
   * Bytes of a Content-Length body still to come. The request is whole with its last
   * byte, not at BODY_END: the app may answer as soon as it has the whole body, and the
   * connection stays fit for the next request when it does.
   */
  private bodyLeft = 0;
  /** lodged's socket is paused until the app reads what was written. */
  private holding = false;

  constructor(
    private readonly head: RequestHead,
    server: net.Server,
    private readonly connection: AppConnection,
    private readonly out: FrameOut,
    private readonly done: (status: number) => void,
  ) {
    // Throws (lane.ts answers 400) before the connection is touched.
    const text = requestHeadText(head);
    const h = head.headers;
    if (head.tunnel) this.bodyMode = Body.Tunnel;
    else if (h['Transfer-Encoding'] !== undefined) this.bodyMode = Body.Chunked;
    else if (h['Content-Length'] !== undefined && (this.bodyLeft = Number(h['Content-Length'])) > 0) this.bodyMode = Body.Length;
    // A request without a body is whole now: the app's answer may come before BODY_END
    // does, and the connection is still fit for the next request.
    else this.bodyMode = Body.Done;
    this.parser = connection.parser;
    this.parser.begin(this, head.method === 'HEAD');
    this.conn = connection.take(server, head.peer, this);
    this.write(Buffer.from(text, 'latin1'));
  }

  /** Its END or ERROR went out. */
  get isFinished(): boolean {
    return this.finished;
  }

  /** A BODY frame's bytes: the request body (or, in a tunnel, the client's bytes). */
  body(bytes: Buffer): void {
    if (this.finished || bytes.length === 0) return;
    switch (this.bodyMode) {
      case Body.Tunnel:
        // Before the app's 101 there is nothing to pass them to but the app's server.
        if (!this.conn.writableEnded) this.write(bytes);
        return;
      case Body.Length: {
        const part = bytes.length > this.bodyLeft ? bytes.subarray(0, this.bodyLeft) : bytes;
        this.bodyLeft -= part.length;
        if (this.bodyLeft === 0) this.bodyMode = Body.Done;
        this.write(part);
        return;
      }
      case Body.Chunked:
        this.write(chunk(bytes));
        return;
      case Body.Done:
        return;
    }
  }

  /** BODY_END: the request body is whole (in a tunnel: the client left). */
  bodyEnd(): void {
    if (this.finished) return;
    if (this.bodyMode === Body.Tunnel) {
      if (!this.tunnel) return;
      const t = this.conn;
      t.end();
      setTimeout(() => t.destroy(), TUNNEL_CLOSE_WAIT_MS).unref();
      return;
    }
    if (this.bodyMode === Body.Chunked) {
      this.bodyMode = Body.Done;
      this.write(LAST_CHUNK);
    }
  }

  /** ABORT: the client is gone. The app's connection closes (its request sees 'close'); END says the worker stopped. */
  abort(): void {
    if (this.finished) return;
    this.finish(END_FRAME);
  }

  // The app may answer inside the write (its server reads and answers synchronously), and
  // that answer may close the connection: a write that says "full" then holds nothing.
  private write(bytes: Buffer): void {
    if (!this.conn.write(bytes) && !this.holding && !this.finished) {
      this.holding = true;
      this.out.pauseInput();
    }
  }

  // ConnectionUser: what the connection brings.

  data(chunk: Buffer): void {
    if (this.finished) return;
    const wrong = this.parser.push(chunk);
    if (wrong !== undefined) this.cut(`the app's answer is not HTTP (${wrong})`);
  }

  ended(): void {
    if (this.finished) return;
    const wrong = this.parser.eof();
    if (wrong !== undefined) this.cut(wrong);
  }

  closed(): void {
    if (this.finished) return;
    if (this.tunnel) return this.finish(END_FRAME);
    this.cut(this.parser.started ? 'the app closed the connection in the middle of its response' : 'the app closed the connection without answering');
  }

  drained(): void {
    if (!this.holding) return;
    this.holding = false;
    this.out.resumeInput();
  }

  // ResponseSink: what the parser read.

  onHead(status: number, raw: Array<[string, string]>): void {
    if (this.finished) return;
    // Only a handshake (a TUNNEL request) may switch protocols: anywhere else the bytes
    // that would follow are no HTTP response mod_lodge could pass on.
    if (status === 101 && !this.head.tunnel) return this.cut('the app answered 101 Switching Protocols to a request that asked for no upgrade');
    this.status = status;
    let headers = raw;
    if (status === 101) this.tunnel = true;
    else if (raw.some(([name]) => isConnectionHeader(name))) headers = raw.filter(([name]) => !isConnectionHeader(name));
    this.headSent = true;
    this.out.send(headFrame(status, headers));
  }

  onBody(bytes: Buffer): void {
    if (this.finished) return;
    let ok = true;
    for (let at = 0; at < bytes.length; at += FRAME_CHUNK_MAX) {
      ok = this.out.send(encodeFrame(FrameType.DATA, at === 0 && bytes.length <= FRAME_CHUNK_MAX ? bytes : bytes.subarray(at, at + FRAME_CHUNK_MAX)));
    }
    if (!ok) {
      const conn = this.conn;
      conn.pause();
      this.out.onDrain(() => conn.resume());
    }
  }

  onEnd(): void {
    if (this.finished) return;
    // The whole response came and the server keeps the connection (no `Connection:
    // close`), and the whole request went to the app: the next request may follow on the
    // same connection. An app that answered before reading all of the body gets a new one
    // (the rest of that body is no request).
    this.clean = !this.tunnel && this.parser.keepAlive && this.bodyMode === Body.Done;
    this.finish(END_FRAME);
  }

  // Before HEAD: a 502 page; after it, ERROR cuts the response off, so the client sees
  // it end short, never a complete wrong one.
  private cut(why: string): void {
    if (this.finished) return;
    this.status = this.headSent ? this.status : 502;
    this.finish(appFailed(this.head.line, why));
  }

  private finish(last: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.out.send(last);
    this.connection.release(this.conn, this.clean);
    if (this.holding) this.out.resumeInput();
    this.holding = false;
    this.done(this.status);
  }
}
