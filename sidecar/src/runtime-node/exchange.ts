import * as http from 'node:http';
import type * as net from 'node:net';
import { FRAME_CHUNK_MAX, MESSAGE_TEXT_MAX } from '../protocol/constants';
import { END_FRAME, FrameType, encodeError, encodeFrame, encodeHead } from '../protocol/frames';
import { AppConnection } from './app-connection';
import { log } from './process-io';
import { RequestHead } from './request-head';
import { ResponseParser } from './response-parser';
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
 * own parser, as from any client. The runtime writes the request head itself (names and
 * values checked as Node's client checks them), then the body as BODY frames come
 * (chunked when it has no length), and reads the server's answer with Node's HTTP
 * parser (response-parser.ts). The answer goes out as HEAD, DATA… and END, or ERROR.
 * A WebSocket handshake the app answers with 101 becomes a tunnel (PROTOCOL.md, "The
 * tunnel"): BODY frames are the client's bytes, DATA the app's, until either side ends.
 *
 * `done(status)` runs once, when the exchange has sent its END or ERROR.
 */
export class Exchange {
  private readonly conn: PairEnd;
  private readonly bytes: Buffer;
  private readonly parser: ResponseParser;
  private readonly chunked: boolean;
  private tunnel?: PairEnd;
  private headSent = false;
  /** The whole request is with the app (the response may come before BODY_END does). */
  private requestDone: boolean;
  /** Body bytes still to come, for a body with a length. */
  private left: number;
  private responseKeepAlive = false;
  /** The response ended as HTTP/1.1 ends one on a connection that stays open. */
  private clean = false;
  private finished = false;
  private status = 0;
  private readonly onData = (chunk: Buffer) => this.fromApp(chunk);
  private readonly onEnd = () => this.appEnded();
  private readonly onClose = () => this.appEnded();
  private readonly onErr = (err: Error) => this.onError(err as NodeJS.ErrnoException);

  constructor(
    private readonly head: RequestHead,
    server: net.Server,
    private readonly connection: AppConnection,
    private readonly out: FrameOut,
    private readonly done: (status: number) => void,
  ) {
    // Throws (before anything is sent) for what Node's client would refuse to write.
    this.bytes = requestBytes(head);
    this.chunked = head.headers['Transfer-Encoding'] === 'chunked';
    this.left = this.chunked ? Infinity : Number(head.headers['Content-Length'] ?? 0) || 0;
    this.requestDone = this.left === 0;
    this.parser = new ResponseParser(head.method === 'HEAD', {
      head: (status, raw, upgrade, keepAlive) => this.onHead(status, raw, upgrade, keepAlive),
      body: (b) => this.toClient(b),
      complete: () => this.onComplete(),
    });
    const runtime = connection.take(server, head.peer);
    this.conn = runtime;
    runtime.on('data', this.onData);
    runtime.on('end', this.onEnd);
    runtime.on('close', this.onClose);
    runtime.on('error', this.onErr);
  }

  /**
   * Sends the request head. On a kept connection the app may answer at once: `done` can
   * run before this returns, so the caller holds the exchange before it starts it.
   */
  start(): void {
    this.conn.write(this.bytes);
  }

  /** A BODY frame's bytes: the request body (or, in a tunnel, the client's bytes). */
  body(bytes: Buffer): void {
    if (this.finished || !bytes.length || (this.requestDone && !this.tunnel)) return;
    const w = this.tunnel ?? this.conn;
    if (this.chunked && !this.tunnel) w.write(`${bytes.length.toString(16)}\r\n`, 'latin1');
    let ok = w.write(bytes);
    if (this.chunked && !this.tunnel) ok = w.write('\r\n', 'latin1');
    else if (!this.tunnel && (this.left -= bytes.length) <= 0) this.requestDone = true;
    if (!ok) this.holdInput(w);
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
    if (!this.chunked || this.requestDone) return;
    this.requestDone = true;
    this.conn.write('0\r\n\r\n', 'latin1');
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

  // The app's bytes, before a 101: its HTTP response.
  private fromApp(chunk: Buffer): void {
    if (this.finished) return;
    const r = this.parser.execute(chunk);
    if (r instanceof Error) return this.onError(r as NodeJS.ErrnoException);
    if (this.parser.upgraded && this.tunnel && r < chunk.length) this.sendData(chunk.subarray(r));
  }

  private onHead(status: number, raw: string[], upgrade: boolean, keepAlive: boolean): void {
    if (this.finished) return;
    const headers: Array<[string, string]> = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (upgrade || !CONNECTION_HEADERS.has(raw[i].toLowerCase())) headers.push([raw[i], raw[i + 1]]);
    }
    this.status = status;
    this.responseKeepAlive = keepAlive;
    this.sendHead(status, headers);
    if (!upgrade) return;
    // The connection is the tunnel's now: the app's bytes go out as they come.
    const socket = this.conn;
    this.tunnel = socket;
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    this.stream(socket, () => this.finish(END_FRAME));
    socket.on('close', () => this.finish(END_FRAME));
    socket.on('error', () => this.finish(END_FRAME));
  }

  private onComplete(): void {
    if (this.finished || this.tunnel) return;
    // The server keeps the connection (no `Connection: close`) and the whole request went
    // to the app: the next request may follow on it. An app that answered before reading
    // all of the body gets a new one (the rest of that body is no request).
    this.clean = !this.head.tunnel && this.responseKeepAlive && this.requestDone;
    this.finish(END_FRAME);
  }

  // The app's end of the connection ended or closed before its response was complete.
  private appEnded(): void {
    if (this.finished || this.tunnel) return;
    const err = this.parser.finish();
    if (this.finished) return; // a body that ran to the close is complete
    if (err) return this.onError(err as NodeJS.ErrnoException);
    this.cut(this.headSent ? 'the app closed the connection in the middle of its response' : 'the app closed the connection without answering');
  }

  // The app's bytes out as DATA frames, paused while lodged's socket is full.
  private stream(from: PairEnd, ended: () => void): void {
    from.on('data', (chunk: Buffer) => {
      if (this.finished) return;
      this.toClient(chunk);
    });
    from.on('end', ended);
  }

  private toClient(chunk: Buffer): void {
    if (this.finished) return;
    if (!this.sendData(chunk)) {
      const from = this.conn;
      from.pause();
      this.out.onDrain(() => from.resume());
    }
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
    const code = String(err.code ?? '');
    const why = code.startsWith('HPE_') ? `the app's answer is not HTTP (${err.message})` : `the request could not be given to the app: ${err.message}`;
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
    const c = this.conn;
    c.removeListener('data', this.onData);
    c.removeListener('end', this.onEnd);
    c.removeListener('close', this.onClose);
    c.removeListener('error', this.onErr);
    // The rest of the body (if the app answered before reading it) is not the app's any more.
    c.removeAllListeners('drain');
    if (this.tunnel) this.tunnel.destroy();
    this.connection.release(c, this.clean);
    this.out.resumeInput();
    this.done(this.status);
  }
}

// Method and path as Node's client checks them: a token, and no control or space byte.
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const BAD_PATH = /[^\u0021-\u00ff]/;

/** The request head's bytes (latin-1, as Node writes a head), or a throw for one Node's client would refuse. */
function requestBytes(head: RequestHead): Buffer {
  if (!TOKEN.test(head.method)) throw new Error(`the method '${head.method}' is not an HTTP token`);
  if (BAD_PATH.test(head.url)) throw new Error('the request path contains unescaped characters');
  let text = `${head.method} ${head.url} HTTP/1.1\r\n`;
  for (const name in head.headers) {
    const value = head.headers[name];
    http.validateHeaderName(name);
    http.validateHeaderValue(name, value);
    text += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}
