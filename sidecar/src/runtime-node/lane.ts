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
 * A connection mod_lodge made to the app's own socket is a lane too, of one request
 * (`once`, app-socket.ts): its end of file is the client gone, and it closes once answered.
 */
export class Lane {
  private readonly sock: LaneSocket;
  private current?: Exchange | HandedExchange;
  /** Takes no request again: closes once the one in hand is answered. */
  private leaving = false;
  /** Its end is being closed: frames still coming are dropped. */
  private closing = false;
  /** A lane of one request has had it. */
  private served = false;
  /** BODY_END or ABORT came: nothing more of the request's is on its way. */
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
    /** One request, then the lane closes (a connection from the app's socket). */
    private readonly once = false,
  ) {
    // Half-open allowed: EOF does not end the lane's own output, so the request in hand
    // goes on until it is answered or a write fails (nobody holds the other end); the
    // lane closes its end itself, after its last frame.
    this.sock = typeof fd === 'number' ? new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true }) : fd;
    this.leaving = once;
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

  /** SIGTERM: no new request on this lane; close when the one in hand is answered. */
  leave(): void {
    this.leaving = true;
    if (!this.current) this.close();
  }

  /**
   * A frame of the runtime's own ahead of any request (ACCEPTED, on a connection from the
   * app's socket), written now, before the request is read: mod_lodge learns that a worker
   * has it before the app runs. Then reading begins, and the request may be in hand (and
   * answered) before this returns.
   */
  greet(frame: Buffer): void {
    if (!this.sock.destroyed) this.sock.write(frame);
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
    this.host.protocolError(this.index === 0 || this.once ? msg : `lane ${this.index}: ${msg}`, this);
  }

  /** Cuts a connection from the app's socket (its peer broke the protocol): the request in hand ends. */
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
        return this.current ? this.current.bodyEnd() : this.closeOnce();
      case FrameType.ABORT:
        this.inputEnded = true;
        return this.current ? this.current.abort() : this.closeOnce();
      default:
        return this.protocolError(`${frameName(type)} frame is not expected`);
    }
  }

  private request(frame: Buffer): void {
    if (this.current) return this.protocolError('REQ while a request is in hand');
    if (this.once && this.served) return this.protocolError('a second REQ on a connection of one request');
    this.served = true;
    let head: ReturnType<typeof requestHead>;
    try {
      head = requestHead(reqPairs(frame, 8));
    } catch (err) {
      return this.protocolError(`REQ: ${(err as Error).message}`);
    }
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
    this.host.ended?.(this, status);
    // A connection from the app's socket is read to its body's end before it closes: bytes
    // left unread would reset it under mod_lodge, still sending the body of a request the
    // app answered early, and mod_lodge would take that for a worker gone.
    if (this.leaving && (!this.once || this.inputEnded)) this.close();
  }

  // The rest of the body of a request answered early has come.
  private closeOnce(): void {
    if (this.once && this.served) this.close();
  }

  // EOF: every copy of lodged's end is closed. An idle lane closes; a busy one finishes
  // its request first (a write that fails ends it: broken()). On a connection from the
  // app's socket it is mod_lodge gone mid-request (its client left): the request ends.
  private hangUp(): void {
    if (this.once) return this.broken();
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

