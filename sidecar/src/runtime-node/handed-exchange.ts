import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import { FRAME_CHUNK_MAX } from '../protocol/constants';
import { END_FRAME, FrameType, encodeFrame } from '../protocol/frames';
import type { FrameOut } from './exchange';
import { HandedSocket, SocketOwner } from './handed-socket';
import { appFailed, headFrame, isConnectionHeader } from './head-frame';
import { saysZeroLength } from './request-bytes';
import { RequestHead } from './request-head';
import { APP_HEAD_MAX } from './response-parser';

type Req = http.IncomingMessage & { upgrade: boolean; _dump(): void; _consuming: boolean; _addHeaderLines(h: string[], n: number): void };
type Res = http.ServerResponse & { _header: string | null; _closed: boolean };

/** The classes an http server makes its requests and responses of (its options' IncomingMessage and ServerResponse). */
interface Classes {
  Req: new (socket: HandedSocket) => Req;
  Res: new (req: Req) => Res;
}

const classes = new WeakMap<net.Server, Classes | null>();

function classesOf(server: net.Server): Classes | null {
  let c = classes.get(server);
  if (c !== undefined) return c;
  c = null;
  if (server instanceof http.Server || server instanceof https.Server) {
    // Node keeps them under symbols of its own, named as the options are.
    const own = (name: string) => Object.getOwnPropertySymbols(server).find((s) => s.description === name);
    const req = own('IncomingMessage');
    const res = own('ServerResponse');
    const s = server as unknown as Record<symbol, unknown>;
    c = {
      Req: ((req && s[req]) || http.IncomingMessage) as Classes['Req'],
      Res: ((res && s[res]) || http.ServerResponse) as Classes['Res'],
    };
  }
  classes.set(server, c);
  return c;
}

/**
 * A request that can be handed to the app's server as Node's own request and response
 * objects: an http or https server (what Express, Fastify, Koa and plain `http` make),
 * and no WebSocket handshake (that needs a connection the app can take: exchange.ts).
 */
export function handable(server: net.Server, head: RequestHead): boolean {
  return !head.tunnel && classesOf(server) !== null;
}

// Marks a response whose body goes out as written: no chunk framing (HandedExchange).
const HANDED = Symbol('lodge.handed');
let storePatched = false;

// A response's body reaches mod_lodge in DATA frames, which carry their own lengths: a
// handed response is never chunked, even when the app set `Transfer-Encoding: chunked`
// (that header is dropped from HEAD, as the in-process connection's are).
function patchStoreHeader(): void {
  if (storePatched) return;
  storePatched = true;
  const proto = http.ServerResponse.prototype as unknown as { _storeHeader(this: Res, line: string, headers: unknown): void };
  const store = proto._storeHeader;
  proto._storeHeader = function _storeHeader(this: Res & { chunkedEncoding: boolean }, line: string, headers: unknown) {
    store.call(this, line, headers);
    if ((this as unknown as Record<symbol, boolean>)[HANDED]) this.chunkedEncoding = false;
  };
}

let needDrainKey: symbol | undefined;

function needDrainOf(res: Res): symbol | undefined {
  if (!needDrainKey) needDrainKey = Object.getOwnPropertySymbols(res).find((s) => s.description === 'kNeedDrain');
  return needDrainKey;
}

const enum Body {
  Done,
  Length,
  Chunked,
}

/**
 * One request handed to the app's http server as Node's own IncomingMessage and
 * ServerResponse, emitted as 'request' the way Node's server does once its parser has
 * read a request's head (its `parserOnIncoming`): no HTTP/1.1 is written for the app's
 * server to parse and none read back from it. The request is what exchange.ts would
 * write (request-head.ts: the same headers, in the same order, checked the same way);
 * its body is pushed into the request as BODY frames come, with back-pressure both ways.
 * The request was checked as exchange.ts checks it (lane.ts answers 400 for what cannot
 * be HTTP/1.1). The response's head is the text Node made of it (`res._header`, cut into HEAD's
 * pairs); its body goes out as written, in DATA frames; 'finish' is END.
 *
 * `done(status)` runs once, when the exchange has sent its END or ERROR.
 */
export class HandedExchange implements SocketOwner {
  private readonly socket: HandedSocket;
  private readonly req: Req;
  private readonly res: Res;
  private headSent = false;
  private finished = false;
  private status = 0;
  private bodyMode: Body;
  private bodyLeft = 0;
  /** The request body's input is paused until the app reads what it was given. */
  private holding = false;
  /** A write found the lane full; drain is awaited. */
  private waitingDrain = false;

  constructor(
    private readonly head: RequestHead,
    private readonly server: net.Server,
    private readonly out: FrameOut,
    private readonly done: (status: number) => void,
  ) {
    patchStoreHeader();
    const c = classesOf(server)!;
    const h = head.headers;
    if (h['Transfer-Encoding'] !== undefined) this.bodyMode = Body.Chunked;
    else if (h['Content-Length'] !== undefined && (this.bodyLeft = Number(h['Content-Length'])) > 0) this.bodyMode = Body.Length;
    else this.bodyMode = Body.Done;

    const socket = (this.socket = new HandedSocket(server, head.peer, this));
    const req = (this.req = new c.Req(socket));
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
    req.url = head.url;
    req.method = head.method;
    req.upgrade = false;
    const raw: string[] = [];
    for (const name in h) raw.push(name, h[name]);
    if (saysZeroLength(head)) raw.push('Content-Length', '0');
    req._addHeaderLines(raw, raw.length);

    const res = (this.res = new c.Res(req));
    (res as unknown as Record<symbol, boolean>)[HANDED] = true;
    res.shouldKeepAlive = true;
    res.assignSocket(socket as unknown as net.Socket);
    res.on('finish', () => this.answered());

    server.emit('request', req, res);
    // A request without a body is whole now, as Node's parser ends it right after 'request'.
    if (this.bodyMode === Body.Done) this.complete();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** A BODY frame's bytes: the request body. */
  body(bytes: Buffer): void {
    if (this.finished || bytes.length === 0 || this.bodyMode === Body.Done) return;
    let part = bytes;
    if (this.bodyMode === Body.Length) {
      if (part.length > this.bodyLeft) part = part.subarray(0, this.bodyLeft);
      this.bodyLeft -= part.length;
    }
    const req = this.req;
    if (!req.destroyed && !req.push(part) && !this.holding) {
      this.holding = true;
      this.out.pauseInput();
    }
    if (this.bodyMode === Body.Length && this.bodyLeft === 0) this.complete();
  }

  /** BODY_END: the request body is whole. */
  bodyEnd(): void {
    if (this.finished || this.bodyMode === Body.Done) return;
    // A Content-Length body that ended short: the app's request is cut, as by a client gone.
    if (this.bodyMode === Body.Length) return this.abort();
    this.complete();
  }

  /** ABORT: the client is gone. The app's request and response see it as a closed connection does; END says the worker stopped. */
  abort(): void {
    if (this.finished) return;
    this.finish(END_FRAME);
    const err = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    this.socket.gone();
    this.req.destroy(err);
  }

  // The body is all in the request's own buffer: input is read again, for the ABORT a
  // client gone would bring (the reader's _read, which resumes it, is never called once
  // the body has ended).
  private complete(): void {
    this.bodyMode = Body.Done;
    this.resumeInput();
    const req = this.req;
    if (req.destroyed) return;
    req.complete = true;
    req.push(null);
  }

  // SocketOwner: what the app's response did with its socket.

  wrote(data: string | Uint8Array, encoding: BufferEncoding | undefined): boolean {
    if (this.finished) return true;
    if (!this.headSent) {
      const header = this.res._header;
      // 100 Continue, 102, 103 Early Hints: written before the head; mod_lodge passes no 1xx.
      if (typeof data !== 'string' || !header || !data.startsWith(header)) return true;
      if (!this.sendHead(header)) return true;
      if (data.length === header.length) return true;
      data = data.slice(header.length);
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data;
    let ok = true;
    for (let at = 0; at < bytes.length; at += FRAME_CHUNK_MAX) {
      const part = at === 0 && bytes.length <= FRAME_CHUNK_MAX ? bytes : bytes.subarray(at, at + FRAME_CHUNK_MAX);
      ok = this.out.send(encodeFrame(FrameType.DATA, part as Buffer));
    }
    if (!ok && !this.waitingDrain) {
      this.waitingDrain = true;
      this.out.onDrain(() => this.drained());
    }
    return ok;
  }

  destroyed(): void {
    if (this.finished) return;
    this.cut(this.headSent ? 'the app closed the connection in the middle of its response' : 'the app closed the connection without answering');
  }

  pauseInput(): void {
    if (this.holding || this.finished) return;
    this.holding = true;
    this.out.pauseInput();
  }

  resumeInput(): void {
    if (!this.holding) return;
    this.holding = false;
    this.out.resumeInput();
  }

  // As Node's server does when a connection's idle timer fires: the request, the
  // response and the server are asked; if none listens, the connection closes.
  timedOut(): void {
    const { req, res, socket } = this;
    const r = !req.complete && req.emit('timeout', socket);
    const s = res.emit('timeout', socket);
    const v = this.server.emit('timeout', socket);
    if (!r && !s && !v) socket.destroy();
  }

  private drained(): void {
    this.waitingDrain = false;
    this.socket.drained();
    const key = needDrainOf(this.res);
    const r = this.res as unknown as Record<symbol, boolean>;
    if (!this.finished && key && r[key]) {
      r[key] = false;
      this.res.emit('drain');
    }
  }

  // The head Node wrote: its status line and `Name: value` lines, each checked by Node
  // already (no CR or LF in a value); the connection's own headers are dropped.
  private sendHead(text: string): boolean {
    if (text.length > APP_HEAD_MAX + 4) {
      this.cut(`the response head is larger than ${APP_HEAD_MAX} bytes`);
      return false;
    }
    const status = this.res.statusCode;
    if (status === 101) {
      this.cut('the app answered 101 Switching Protocols to a request that asked for no upgrade');
      return false;
    }
    const headers: Array<[string, string]> = [];
    let at = text.indexOf('\r\n') + 2;
    const end = text.length - 2;
    while (at < end) {
      const eol = text.indexOf('\r\n', at);
      const colon = text.indexOf(':', at);
      const name = text.slice(at, colon);
      if (!isConnectionHeader(name)) headers.push([name, text.slice(colon + 2, eol)]);
      at = eol + 2;
    }
    this.status = status;
    this.headSent = true;
    this.out.send(headFrame(status, headers));
    return true;
  }

  // 'finish': everything the app wrote has gone to the owner. As Node's server does then
  // (its resOnFinish): a body the app never read is dumped, the response leaves its
  // socket and says 'close'.
  private answered(): void {
    const { req, res, socket } = this;
    if (!req._consuming && !(req as unknown as { _readableState: { resumeScheduled: boolean } })._readableState.resumeScheduled) req._dump();
    if (res.socket) res.detachSocket(socket as unknown as net.Socket);
    process.nextTick(() => {
      if (!res._closed) {
        res.destroyed = true;
        res._closed = true;
        res.emit('close');
      }
    });
    if (!this.finished) {
      if (this.headSent) this.finish(END_FRAME);
      else this.cut('the app ended its response without a head');
    }
    socket.gone();
  }

  private cut(why: string): void {
    if (this.finished) return;
    this.status = this.headSent ? this.status : 502;
    this.finish(appFailed(this.head.line, why));
  }

  private finish(last: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.out.send(last);
    if (this.holding) this.out.resumeInput();
    this.holding = false;
    this.done(this.status);
  }
}
