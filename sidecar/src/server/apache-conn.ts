import { Socket } from 'node:net';
import { FrameError, FrameReader } from '../protocol/frame-reader';
import { FrameScanner } from '../protocol/frame-scanner';
import {
  APP_BORROW, APP_MAY_BORROW, APP_ROUTE, APP_TUNNEL, encodeRoute, BODY_END_FRAME, END_FRAME, FrameType, Release, encodeError, encodeFrame, encodeGrant, encodeHead, frameName,
} from '../protocol/frames';
import { FRAME_CHUNK_MAX, STATUS_BODY_MAX } from '../protocol/constants';
import { OwnPage, ownPageOf, parseDashboardApp, parseRelease, parseStatusApp, parseVerdict } from '../protocol/schemas';
import type { DashboardOwner } from '../pool/dashboard-owner';
import { LodgeError, ProtocolError, WorkerDiedError } from '../errors';
import { log } from '../log';
import { Exchange, WorkerHandle } from '../pool/exchange';
import { Pool } from '../pool/pool';
import { recentExitError } from '../pool/recent-exits';
import { Registry } from '../pool/registry';
import { sendWithFd, socketFd } from '../posix';
import { StatusWeb } from '../status/web';
import { StatusAnswer } from '../status/web-answer';
import { StatusRequest, parseStatusRequest } from '../status/web-request';
import { TunnelStream } from '../status/ws-tunnel';
import { refusedRequest, releasedStatus, responseStatus } from '../status/request-hooks';

/** Request frames held while no worker is free, before the socket is paused. */
const HOLD_BYTES = 256 * 1024;

/**
 * One persistent connection from an Apache child. Requests come one at a time.
 *
 * mod_lodge borrows the worker (APP flag BORROW): lodged sends it the frames that
 * came with the APP, lends mod_lodge its socket (GRANT), and waits for it back:
 *
 *   idle ─APP─▶ app ─REQ─▶ waiting ──worker──▶ lending ──GRANT──▶ lent ──RELEASE──▶ idle
 *                             └──fail: ERROR──▶ idle           RELEASE LOST ──▶ verdict ──ERROR──▶ idle
 *
 * A peer that does not borrow has its frames carried both ways by lodged:
 *
 *   idle ─APP─▶ app ─REQ─▶ waiting ──worker──▶ body ──BODY_END──▶ response ──END/ERROR──▶ idle
 *                             └──fail──▶ drain (drop body up to BODY_END) ──▶ idle
 *
 * The worker may finish before the body is all in; the rest is dropped (`drain`).
 *
 * An APP of `kind=status` (the host's status location) or `kind=dashboard` (a tenant's
 * dashboard, status/dashboard-web.ts, never tunnelled) runs no app: lodged answers it
 * (status/web.ts). One with the TUNNEL flag has no body; a 101 opens the tunnel, whose
 * BODY frames are the client's bytes until BODY_END, and lodged's END closes it:
 *
 *   app ─REQ─▶ status-body ──BODY_END──▶ HEAD DATA… END ──▶ idle
 *   app ─REQ (TUNNEL)─▶ HEAD 101 ──▶ tunnel ──END──▶ tunnel-done ──BODY_END/APP──▶ idle
 *                          └──other status: HEAD DATA… END──▶ tunnel-done
 *
 * `tunnel-done` takes a BODY_END (or BODY still in flight) if mod_lodge sends one after
 * the END, or the next request's APP if it does not.
 */
type State = 'idle' | 'app' | 'waiting' | 'body' | 'response' | 'drain' | 'lending' | 'lent' | 'verdict' | 'status-body' | 'tunnel' | 'tunnel-done';

export class ApacheConn implements Exchange {
  private state: State = 'idle';
  private readonly reader: FrameReader;
  private readonly bodyScanner = new FrameScanner(
    (t) => t === FrameType.BODY_END,
    (t) => t === FrameType.BODY || t === FrameType.BODY_END,
  );
  private appFrame?: Buffer;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private pool?: Pool;
  private worker?: WorkerHandle;
  private bodyDone = false;
  private closed = false;
  private needWorker = false;
  borrows = false;
  /** The peer takes a GRANT for this bodyless request too, if lodged prefers. */
  private mayBorrow = false;
  private statusReq?: StatusRequest;
  /** The tenant whose dashboard the request is to (APP kind=dashboard), once checked. */
  private dashboardOwner?: DashboardOwner;
  private statusBody: Buffer[] = [];
  private statusBodyBytes = 0;
  private tunnel?: TunnelStream;
  /** The tunnel's BODY_END came: the client left. */
  private tunnelInputDone = false;
  /** performance.now() at the request's REQ, and the status seen of its answer (0: none yet), for the status model. */
  private began = 0;
  private answered = 0;

  constructor(
    private readonly socket: Socket,
    private readonly registry: Registry,
    private readonly peer: string,
    private readonly status?: StatusWeb,
    /** Who the peer is (SO_PEERCRED): an app's own socket is made for this user. */
    private readonly peerCred?: { uid: number; gid: number },
  ) {
    this.reader = new FrameReader((type, frame) => this.onFrame(type, frame));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.worker?.resumeOutput();
      this.tunnel?.drained();
    });
    socket.on('error', (err) => log.debug(`${peer}: ${err.message}`));
    socket.on('close', () => this.onClose());
  }

  attach(worker: WorkerHandle): void {
    this.worker = worker;
    this.state = this.borrows ? 'lending' : this.bodyDone ? 'response' : 'body';
    this.dropHeld();
  }

  /**
   * The held frames are done with (given to a worker, answered, or routed): reading
   * resumes, as it was paused past HOLD_BYTES (a REQ of large headers and its BODY_END)
   * and the peer keeps this connection for its next request or VERDICT.
   */
  private dropHeld(): void {
    this.held = [];
    this.heldBytes = 0;
    if (!this.closed) this.socket.resume();
  }

  fromWorker(data: Buffer, last: boolean): void {
    const ok = this.socket.write(data);
    if (this.answered === 0) this.answered = responseStatus(data);
    if (last) {
      this.pool?.stats.ended(this.answered, this.began, false);
      this.worker = undefined;
      this.finishResponse();
    } else if (!ok && this.bodyDone) {
      // Only once the body is all in: before that, Apache is still writing and not
      // reading, and pausing the worker would deadlock the two.
      this.worker?.pauseOutput();
    }
  }

  // The GRANT carries the worker's socket, and is written past Node's stream, so it
  // waits for whatever that stream still has queued (an earlier exchange's ERROR).
  grant(worker: WorkerHandle): void {
    if (this.closed || this.worker !== worker || this.state !== 'lending') return;
    if (this.socket.writableLength > 0) {
      this.socket.write(Buffer.alloc(0), () => this.grant(worker));
      return;
    }
    const frame = encodeGrant(worker.timeoutSecs, worker.pid);
    let sent = -1;
    try {
      sent = sendWithFd(socketFd(this.socket), frame, worker.fd);
    } catch (err) {
      log.debug(`${this.peer}: GRANT: ${(err as Error).message}`);
    }
    if (sent !== frame.length) return this.protocolFailure('cannot lend the worker (GRANT not sent whole)');
    this.state = 'lent';
  }

  fail(err: LodgeError, midFrame = false): void {
    this.needWorker = false;
    this.pool?.stats.ended(err.status, this.began, this.state === 'waiting');
    if (this.closed) return;
    // An ERROR after half a frame would be read as the rest of it: mod_lodge would wait
    // for bytes that never come, holding the client and an Apache child.
    if (midFrame) return this.protocolFailure(`the response stopped inside a frame (${err.message})`);
    if (this.state === 'waiting') this.pool?.cancel(this);
    this.worker = undefined;
    this.socket.write(encodeError(err.status, err.retryAfter, err.message));
    this.dropHeld();
    this.finishResponse();
  }

  pauseApache(): void {
    this.socket.pause();
  }

  resumeApache(): void {
    if (!this.closed) this.socket.resume();
  }

  private finishResponse(): void {
    // A borrowing peer sends nothing more for this request once it has lodged's answer.
    if (this.bodyDone || this.borrows) {
      this.state = 'idle';
      this.appFrame = undefined;
    } else {
      this.state = 'drain';
      // It may have been paused for a worker that no longer reads.
      if (!this.closed) this.socket.resume();
    }
  }

  private onData(chunk: Buffer): void {
    try {
      if ((this.state === 'body' || this.state === 'drain') && this.reader.idle) this.onBodyData(chunk);
      else this.reader.push(chunk);
    } catch (err) {
      const detail = err instanceof FrameError ? err.message : (err as Error).stack;
      return this.protocolFailure(`bad frame: ${detail}`);
    }
    // Acquired after the whole chunk is read, so that REQ and BODY_END that came
    // together reach the worker in one write.
    if (this.needWorker) {
      this.needWorker = false;
      if (this.routeToApp()) return;
      if (this.mayBorrow && this.bodyDone && this.pool!.lendsBodyless()) this.borrows = true;
      // BODY frames that arrive while queued are appended to this same array.
      this.pool!.acquire(this, this.held);
    }
  }

  /**
   * A peer that can go to the app's own socket (APP flag ROUTE) is told where it is,
   * once a worker of the app is ready, instead of being served here; it sends nothing
   * more for this request than it had (APP REQ, and BODY_END when bodyless) and
   * sends it again to the app.
   */
  private routeToApp(): boolean {
    const pool = this.pool!;
    const dir = this.registry.routeDir;
    if (!dir || !(this.appFrame![1] & APP_ROUTE) || !this.peerCred || !(this.borrows || this.bodyDone)) return false;
    pool.ensureRoute(dir, this.peerCred.uid, this.peerCred.gid);
    const where = pool.routeReady();
    if (!where) return false;
    pool.lastUsed = Date.now();
    // A Node worker takes request after request on one connection (runtime-node/app-socket.ts).
    this.socket.write(encodeRoute(where, pool.spec.limits.timeout, pool.queueSeconds, pool.spec.kind === 'node'));
    this.state = 'idle';
    this.appFrame = undefined;
    this.dropHeld();
    return true;
  }

  // Body bytes go to the worker as the slices they came in; only frame headers are
  // looked at, to find BODY_END.
  private onBodyData(chunk: Buffer): void {
    const end = this.bodyScanner.scan(chunk);
    const mine = end < 0 || end === chunk.length ? chunk : chunk.subarray(0, end);
    if (this.state === 'body' && this.worker && !this.worker.send([mine])) this.socket.pause();
    if (end < 0) return;
    this.bodyDone = true;
    if (this.state === 'body') {
      this.state = 'response';
    } else {
      this.state = 'idle';
      this.appFrame = undefined;
    }
    if (end < chunk.length) this.reader.push(chunk.subarray(end));
  }

  private onFrame(type: number, frame: Buffer): void {
    switch (this.state) {
      case 'idle':
        if (type === FrameType.VERDICT) return this.onVerdict(frame);
        if (type !== FrameType.APP) return this.unexpected(type);
        this.appFrame = frame;
        this.borrows = (frame[1] & APP_BORROW) !== 0;
        this.mayBorrow = (frame[1] & APP_MAY_BORROW) !== 0;
        this.state = 'app';
        return;
      case 'app':
        if (type !== FrameType.REQ) return this.unexpected(type);
        const page = ownPageOf(this.appFrame!);
        if (page) return this.startStatus(frame, page);
        this.bodyDone = false;
        this.held = [frame];
        this.heldBytes = frame.length;
        this.startRequest();
        if (this.appFrame && this.appFrame[1] & APP_TUNNEL) this.tunnelRequest();
        return;
      case 'waiting':
        // A borrowing peer sends its body to the worker, after the GRANT.
        if (this.borrows || (type !== FrameType.BODY && type !== FrameType.BODY_END)) return this.unexpected(type);
        if (type === FrameType.BODY_END) this.bodyDone = true;
        this.held.push(frame);
        this.heldBytes += frame.length;
        if (this.heldBytes > HOLD_BYTES) this.socket.pause();
        return;
      case 'body':
        if (type !== FrameType.BODY && type !== FrameType.BODY_END) return this.unexpected(type);
        if (type === FrameType.BODY_END) {
          this.bodyDone = true;
          this.state = 'response';
        }
        if (this.worker && !this.worker.send([frame])) this.socket.pause();
        return;
      case 'drain':
        if (type === FrameType.BODY) return;
        if (type !== FrameType.BODY_END) return this.unexpected(type);
        this.bodyDone = true;
        this.state = 'idle';
        this.appFrame = undefined;
        return;
      case 'status-body':
        if (type === FrameType.BODY) {
          this.statusBodyBytes += frame.length - 8;
          if (this.statusBodyBytes <= STATUS_BODY_MAX) this.statusBody.push(frame.subarray(8));
          return;
        }
        if (type !== FrameType.BODY_END) return this.unexpected(type);
        this.bodyDone = true;
        return this.answerStatus(false);
      case 'tunnel':
        if (this.tunnelInputDone || (type !== FrameType.BODY && type !== FrameType.BODY_END)) return this.unexpected(type);
        if (type === FrameType.BODY) return this.tunnel!.fromApache(frame.subarray(8));
        this.tunnelInputDone = true;
        return this.tunnel!.apacheEnded();
      case 'tunnel-done':
        if (type === FrameType.BODY) return;
        this.state = 'idle';
        this.appFrame = undefined;
        if (type === FrameType.BODY_END) return;
        return this.onFrame(type, frame);
      case 'lent':
        if (type !== FrameType.RELEASE) return this.unexpected(type);
        return this.onRelease(frame);
      case 'response':
      case 'lending':
      case 'verdict':
        return this.unexpected(type);
    }
  }

  private onRelease(frame: Buffer): void {
    let release: { verdict: number; status: number };
    try {
      release = parseRelease(frame);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return this.protocolFailure(err.message);
    }
    this.release(release.verdict, release.status);
  }

  /**
   * A request that went straight to the app's socket failed (VERDICT): the worker that
   * took it is stopped, or, for LOST, mod_lodge is told why it went (an ERROR).
   */
  private onVerdict(frame: Buffer): void {
    let v: { verdict: number; status: number; pid: number; ticket: number; socket: string };
    try {
      v = parseVerdict(frame);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return this.protocolFailure(err.message);
    }
    // No ACCEPTED came (it goes with the answer): the REQ's ticket names the worker.
    if (v.pid === 0) v.pid = this.registry.pidByTicket(v.socket, v.ticket) ?? 0;
    const worker = v.pid !== 0 ? this.registry.workerByPid(v.pid) : undefined;
    this.pool = undefined;
    if (v.verdict !== Release.LOST) {
      worker?.directVerdict(this, v.verdict, v.status);
      return;
    }
    this.borrows = true; // nothing more comes for it: after the ERROR, idle
    this.state = 'verdict';
    if (worker) return worker.directVerdict(this, v.verdict, v.status);
    const gone = v.pid !== 0 ? recentExitError(v.pid) : undefined;
    this.fail(gone ?? new WorkerDiedError(v.pid !== 0 ? `worker ${v.pid} is not one of lodged's; it went away during a request`
      : `no worker of the app's socket ${v.socket} holds ticket ${v.ticket}: the worker that took the request went away before answering`));
  }

  private release(verdict: number, status: number): void {
    const worker = this.worker!;
    if (verdict === Release.LOST) {
      // The worker's answer (why it went) comes through fail().
      this.state = 'verdict';
    } else {
      this.pool?.stats.ended(releasedStatus(verdict, status), this.began, false);
      this.worker = undefined;
      this.state = 'idle';
      this.appFrame = undefined;
    }
    worker.takeBack(this, verdict);
  }

  private startRequest(): void {
    this.began = performance.now();
    this.answered = 0;
    this.state = 'waiting';
    this.worker = undefined;
    try {
      this.pool = this.registry.poolFor(this.appFrame!);
      this.needWorker = true;
    } catch (err) {
      this.pool = undefined;
      const lerr = err instanceof LodgeError ? err : new ProtocolError(`cannot read the APP frame: ${(err as Error).message}`);
      log.error(`${this.peer}: ${lerr.message}`);
      refusedRequest(this.appFrame!, lerr);
      this.fail(lerr);
    }
  }

  /**
   * A WebSocket handshake to an app, once its pool is known: a Node app answers it on its
   * worker's socket, lent (GRANT), where the tunnel then runs (PROTOCOL.md, "The tunnel");
   * so does an ASGI app's (its runtime answers the handshake when the app accepts); a WSGI
   * app cannot tunnel.
   */
  private tunnelRequest(): void {
    const kind = this.pool?.spec.kind;
    if (kind !== 'node' && kind !== 'asgi') return this.noTunnel();
    this.borrows = true;
    this.mayBorrow = false;
  }

  /**
   * A WebSocket handshake to a WSGI app: its workers cannot tunnel, so it is served as
   * the bodyless request it is, and answered as any other (no 101, so mod_lodge opens no
   * tunnel). No BODY_END follows a TUNNEL REQ; the worker gets the one it waits for here.
   */
  private noTunnel(): void {
    this.borrows = false;
    this.mayBorrow = false;
    this.bodyDone = true;
    this.held.push(BODY_END_FRAME);
    this.heldBytes += BODY_END_FRAME.length;
  }

  private startStatus(reqFrame: Buffer, page: OwnPage): void {
    const tunnel = (this.appFrame![1] & APP_TUNNEL) !== 0;
    // lodged answers itself: there is no worker to lend.
    this.borrows = false;
    this.mayBorrow = false;
    // A tunnel's REQ has no BODY_END after it.
    this.bodyDone = tunnel;
    this.statusBody = [];
    this.statusBodyBytes = 0;
    try {
      this.dashboardOwner = undefined;
      if (page === 'status') {
        if (!this.status) throw new ProtocolError('this lodged serves no status location');
        parseStatusApp(this.appFrame!);
      } else {
        if (!this.status?.dashboard) throw new ProtocolError('this lodged serves no dashboards');
        // Whose dashboard, by lodged's own checks of the directory and its file.
        this.dashboardOwner = this.registry.dashboardOwner(parseDashboardApp(this.appFrame!));
      }
      this.statusReq = parseStatusRequest(reqFrame);
    } catch (err) {
      if (!(err instanceof LodgeError)) throw err;
      log.error(`${this.peer}: ${err.message}`);
      return this.fail(err);
    }
    if (tunnel) return this.answerStatus(true);
    this.state = 'status-body';
  }

  /** The one place a status request's answer (status/web.ts) becomes frames. */
  private answerStatus(tunnel: boolean): void {
    const req = this.statusReq!;
    this.statusReq = undefined;
    let answer: StatusAnswer;
    if (this.statusBodyBytes > STATUS_BODY_MAX) {
      answer = { kind: 'response', status: 413, headers: [['Content-Type', 'text/plain']], body: Buffer.from(`at most ${STATUS_BODY_MAX} bytes\n`) };
    } else {
      try {
        const owner = this.dashboardOwner;
        this.dashboardOwner = undefined;
        answer = owner
          ? this.status!.dashboard!.answer(owner, req, Buffer.concat(this.statusBody))
          : this.status!.answer(req, Buffer.concat(this.statusBody), tunnel);
      } catch (err) {
        log.error(`${this.peer}: status ${req.method} ${req.base}${req.path}: ${(err as Error).stack}`);
        answer = { kind: 'response', status: 500, headers: [['Content-Type', 'text/plain']], body: Buffer.from('the status page failed; see lodged\'s log\n') };
      }
    }
    this.statusBody = [];
    if (answer.kind === 'response') {
      const frames = [encodeHead(answer.status, answer.headers)];
      for (let at = 0; at < answer.body.length; at += FRAME_CHUNK_MAX) frames.push(encodeFrame(FrameType.DATA, answer.body.subarray(at, at + FRAME_CHUNK_MAX)));
      frames.push(END_FRAME);
      this.socket.write(Buffer.concat(frames));
      this.state = tunnel ? 'tunnel-done' : 'idle';
      if (!tunnel) this.appFrame = undefined;
      return;
    }
    this.state = 'tunnel';
    this.tunnelInputDone = false;
    this.tunnel = new TunnelStream({
      write: (f) => this.closed || this.socket.write(f),
      ended: () => this.tunnelEnded(),
      pauseInput: () => this.socket.pause(),
      resumeInput: () => this.resumeApache(),
    });
    answer.open(this.tunnel);
  }

  private tunnelEnded(): void {
    this.tunnel = undefined;
    this.resumeApache();
    if (this.tunnelInputDone) {
      this.state = 'idle';
      this.appFrame = undefined;
    } else {
      this.state = 'tunnel-done';
    }
  }

  private unexpected(type: number): void {
    this.protocolFailure(`${frameName(type)} frame is not expected in state '${this.state}'`);
  }

  private protocolFailure(message: string): void {
    log.error(`${this.peer}: ${message}; connection closed`);
    this.socket.destroy();
  }

  private onClose(): void {
    this.closed = true;
    this.tunnel?.destroy();
    if (this.state === 'waiting') this.pool?.cancel(this);
    // The client (or Apache) went away mid-request: free the worker. One that was
    // lent is stopped, since nobody knows how much of its stream was read.
    if (this.borrows) this.worker?.takeBack(this, 'gone');
    else this.worker?.abort();
    this.worker = undefined;
  }
}
