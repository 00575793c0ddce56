import * as net from 'node:net';
import { FrameError, FrameReader } from '../protocol/frame-reader';
import { FrameType, encodeError, frameName } from '../protocol/frames';
import { FRAME_MAX, START_MAX } from '../protocol/constants';
import { giveConnection, takeConnection } from './app-connection';
import { Exchange, FrameOut } from './exchange';
import { HandedExchange, handable } from './handed-exchange';
import { servingServer } from './listen-catch';
import { log } from './process-io';
import { reqPairs } from './req-pairs';
import { checkRequestHead } from './request-bytes';
import { RequestHead, requestHead } from './request-head';

export type Phase = 'start' | 'loading' | 'serving';

/**
 * What a lane uses of its connection: a `net.Socket` on one of lodged's lanes, a
 * RawLink (raw-link.ts) on a connection from the app's socket.
 */
export interface LaneSocket {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  once(event: 'drain', fn: () => void): unknown;
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
  end(cb: () => void): unknown;
  destroy(): unknown;
  ref(): unknown;
  unref(): unknown;
  /** Reading begins (a RawLink's; a net.Socket reads once it has a 'data' listener). */
  start?(): void;
  /** The peer has closed its end (a RawLink's). */
  peerGone?(): boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
}

/** What a lane needs of the process around it (main.ts). */
export interface LaneHost {
  phase(): Phase;
  /** The app's entry file, for the tenant's log and error pages. */
  entry(): string;
  /** START, on lane 0. */
  start(payload: Buffer): void;
  /** A frame the lane cannot take: lodged's lanes end the worker; a connection from the app's socket is closed. */
  protocolError(msg: string, lane: Lane): void;
  /**
   * A request came on a connection from the app's socket: may the worker take it (a lane
   * of its LodgeConcurrency free)? If not, the connection is closed unanswered, and
   * mod_lodge sends the request again on a new one, to the kernel's queue.
   */
  admit?(lane: Lane): boolean;
  /** A request begins on the lane (the board counts those from the app's socket). */
  began?(lane: Lane, head: RequestHead): void;
  /** The lane's request ended with `status` (0: none was sent). */
  ended?(lane: Lane, status: number): void;
  /** The other end hung up (EOF or a broken socket): lane 0's starts the leave grace. */
  hungUp(lane: Lane): void;
  /** The lane is closed, its last frame written (or lost with its socket). */
  closed(lane: Lane): void;
}

/**
 * One lane (PROTOCOL.md, "Lanes"): a socket from lodged that carries one request at a time,
 * exactly as fd 3 does for a worker with one lane. Each request in hand is handed to the
 * app's server by itself (handed-exchange.ts; or on an in-process connection of its own,
 * exchange.ts and app-connection.ts), each lane its own batching and its own
 * back-pressure: a slow request on one lane never holds another's.
 *
 * A connection mod_lodge made to the app's own socket is a lane too (`kept`,
 * app-socket.ts): it carries requests one after another, as long as mod_lodge keeps it,
 * each opened with ACCEPTED; its end of file is mod_lodge gone (its client left, or it
 * closed the connection), which ends the request in hand.
 */
export class Lane {
  private readonly sock: LaneSocket;
  private current?: Exchange | HandedExchange;
  /** Takes no request again: closes once the one in hand is answered. */
  private leaving = false;
  /** Its end is being closed: frames still coming are dropped. */
  private closing = false;
  /** A request has come on the lane. */
  private served = false;
  /** BODY_END or ABORT came: nothing more of the last request's is on its way. */
  private inputEnded = false;
  /** The socket's 'close' came: nothing more goes out. */
  private gone = false;
  /** main.ts was told the lane is closed (once). */
  private told = false;
  private corked = false;
  private readonly out: FrameOut;

  constructor(
    readonly index: number,
    /** One of lodged's lanes (a descriptor), or a connection from the app's socket. */
    fd: number | LaneSocket,
    private readonly host: LaneHost,
    /** A connection from the app's socket; each request on it opens with this ACCEPTED frame. */
    private readonly accepted?: Buffer,
  ) {
    // Half-open allowed: EOF does not end the lane's own output, so the request in hand
    // goes on until it is answered or a write fails (nobody holds the other end); the
    // lane closes its end itself, after its last frame.
    this.sock = typeof fd === 'number' ? new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true }) : fd;
    const reader = new FrameReader((type, frame) => this.onFrame(type, frame), (type) => this.limit(type));
    this.sock.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.protocolError(err.message);
      }
    });
    this.sock.on('end', () => this.hangUp());
    this.sock.on('error', () => this.broken());
    this.sock.on('close', () => {
      this.gone = true;
      this.broken();
    });
    this.out = {
      send: (frame) => this.send(frame),
      onDrain: (fn) => this.sock.once('drain', fn),
      pauseInput: () => this.sock.pause(),
      resumeInput: () => this.sock.resume(),
    };
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  get isClosed(): boolean {
    return this.told;
  }

  /** While the app loads the lanes do not keep the worker alive ('beforeExit' sees an app that never listens). */
  ref(on: boolean): void {
    if (on) this.sock.ref();
    else this.sock.unref();
  }

  /** A connection from the app's socket that carries requests (ACCEPTED given). */
  private get kept(): boolean {
    return this.accepted !== undefined;
  }

  /**
   * SIGTERM, or the worker stops taking requests: no new request on this lane; close when
   * the one in hand is answered (on a connection from the app's socket, once the rest of
   * its body is read too).
   */
  leave(): void {
    this.leaving = true;
    if (!this.current && (!this.kept || this.inputEnded || !this.served)) this.close();
  }

  /** Reading begins (a connection from the app's socket): a request may be in hand, and answered, before this returns. */
  open(): void {
    this.sock.start?.();
  }

  // The frames of one turn of the loop (a small response's HEAD, DATA and END) go out in
  // one write: lodged reads them at once instead of waking for each.
  private send(frame: Buffer): boolean {
    // A lane whose socket broke has nobody to read its frames: they are dropped, and the
    // request was ended when it broke.
    if (this.sock.destroyed || this.sock.writableEnded) return true;
    if (!this.corked) {
      this.corked = true;
      this.sock.cork();
      setImmediate(() => {
        this.corked = false;
        this.sock.uncork();
      });
    }
    return this.sock.write(frame);
  }

  private limit(type: number): number | undefined {
    const phase = this.host.phase();
    if (phase === 'start') return this.index === 0 && type === FrameType.START ? START_MAX : undefined;
    if (phase === 'loading') return undefined; // lodged sends nothing on any lane before READY
    return type === FrameType.REQ || type === FrameType.BODY || type === FrameType.BODY_END || type === FrameType.ABORT ? FRAME_MAX : undefined;
  }

  /** The bytes that come later are not read: the lane (or the worker) is ending. */
  private protocolError(msg: string): void {
    this.sock.pause();
    this.host.protocolError(this.index === 0 || this.kept ? msg : `lane ${this.index}: ${msg}`, this);
  }

  /** Cuts a connection from the app's socket (its peer broke the protocol, or its request is refused): the request in hand ends. */
  drop(): void {
    this.closing = true;
    this.current?.abort();
    this.sock.destroy();
  }

  private onFrame(type: number, frame: Buffer): void {
    if (this.closing) return; // lodged's last frames to a lane that left: nobody answers them
    const payload = frame.subarray(8);
    switch (type) {
      case FrameType.START:
        return this.host.start(payload);
      case FrameType.REQ:
        return this.request(frame);
      // With no request in hand these are leftovers of the one just answered (lodged and
      // mod_lodge pass the body on until they have seen END), or an ABORT that came after it.
      case FrameType.BODY:
        return this.current?.body(payload);
      case FrameType.BODY_END:
        this.inputEnded = true;
        return this.current ? this.current.bodyEnd() : this.atRest();
      case FrameType.ABORT:
        this.inputEnded = true;
        return this.current ? this.current.abort() : this.atRest();
      default:
        return this.protocolError(`${frameName(type)} frame is not expected`);
    }
  }

  private request(frame: Buffer): void {
    if (this.current) return this.protocolError('REQ while a request is in hand');
    if (this.kept && this.served && !this.inputEnded) return this.protocolError('REQ before the last request\'s body ended');
    let head: ReturnType<typeof requestHead>;
    try {
      head = requestHead(reqPairs(frame, 8));
    } catch (err) {
      return this.protocolError(`REQ: ${(err as Error).message}`);
    }
    // mod_lodge gives a kept connection up when no ACCEPTED came within a second (this
    // worker's loop was stuck) and sends the request elsewhere: it must not run here too.
    if (this.kept && this.served && this.sock.peerGone?.()) return this.drop();
    if (this.host.admit && !this.host.admit(this)) return this.drop();
    this.served = true;
    this.inputEnded = false;
    // Before the app runs: from here on mod_lodge knows a worker has the request.
    if (this.accepted && !this.sock.destroyed) this.sock.write(this.accepted);
    this.host.began?.(this, head);
    const server = servingServer();
    if (!server) {
      log(`${head.line}: the app closed its server; answered 502`);
      this.send(encodeError(502, 0, `${this.host.entry()}: the app closed the server it listened on`));
      return this.answered(502);
    }
    try {
      checkRequestHead(head);
    } catch (err) {
      // The client's request line or a header is one that cannot be written as HTTP/1.1 (request-bytes.ts).
      log(`${head.line}: cannot be given to the app: ${(err as Error).message}`);
      this.send(encodeError(400, 0, `${head.line}: ${(err as Error).message}`));
      return this.answered(400);
    }
    const ex = handable(server, head) ? new HandedExchange(head, server, this.out, (status) => this.answered(status)) : this.overConnection(head, server);
    // The whole exchange may happen inside the constructor (the app answered at once):
    // then it is over before it would be in hand.
    if (!ex.isFinished) this.current = ex;
  }

  // A request for a server that is no http one, or a WebSocket handshake: written to the
  // app's server on an in-process connection (exchange.ts).
  private overConnection(head: RequestHead, server: net.Server): Exchange {
    const connection = takeConnection();
    return new Exchange(head, server, connection, this.out, (status) => {
      giveConnection(connection);
      this.answered(status);
    });
  }

  private answered(status: number): void {
    this.current = undefined;
    // The answer is whole: out now, in one write, rather than at the end of the turn (a
    // worker told to leave in between must not exit with it still held back).
    if (this.corked) {
      this.corked = false;
      this.sock.uncork();
    }
    this.host.ended?.(this, status);
    // A connection from the app's socket is read to its body's end before it closes: bytes
    // left unread would reset it under mod_lodge, still sending the body of a request the
    // app answered early, and mod_lodge would take that for a worker gone.
    if (this.leaving && (!this.kept || this.inputEnded)) this.close();
  }

  // The rest of the body of a request answered early has come: a lane that is leaving goes.
  private atRest(): void {
    if (this.kept && this.leaving) this.close();
  }

  // EOF: every copy of lodged's end is closed. An idle lane closes; a busy one finishes
  // its request first (a write that fails ends it: broken()). On a connection from the
  // app's socket it is mod_lodge gone (its client left, or it let the connection go): the
  // request in hand ends.
  private hangUp(): void {
    if (this.kept) return this.broken();
    this.leaving = true;
    this.host.hungUp(this);
    if (!this.current) this.close();
  }

  // The socket failed (a write to a lane nobody holds any more) or closed: the request in
  // hand has nobody to answer to, so it ends as an ABORT ends it (the app's side closed).
  private broken(): void {
    if (!this.leaving) {
      this.leaving = true;
      this.host.hungUp(this);
    }
    if (this.current) this.current.abort();
    else this.close();
  }

  private close(): void {
    if (!this.closing) {
      this.closing = true;
      this.sock.pause();
      // The lane's last frames are flushed before its end closes.
      if (!this.sock.destroyed) this.sock.end(() => this.sock.destroy());
    }
    if (this.gone && !this.told) {
      this.told = true;
      this.host.closed(this);
    }
  }
}

