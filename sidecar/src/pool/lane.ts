import { Socket } from 'node:net';
import { FrameError } from '../protocol/frame-reader';
import { FrameScanner } from '../protocol/frame-scanner';
import { ABORT_FRAME, FrameType, Release, decodePairs, frameName } from '../protocol/frames';
import { ABORT_GRACE_MS, LOST_WAIT_MS } from '../protocol/constants';
import { LodgeError, ProtocolError, WorkerDiedError, WorkerTimeoutError } from '../errors';
import type { KillReason } from '../status/kill-reason';
import { Exchange, WorkerHandle } from './exchange';

/**
 * A request whose lane mod_lodge borrowed: `lending` until the GRANT is out (a
 * failure is still answered with ERROR), `lent` while mod_lodge reads the lane's
 * socket (lodged does not), `lost` once mod_lodge said the socket closed and waits
 * for lodged to say why.
 */
type Lend = 'lending' | 'lent' | 'lost';

/** What a lane asks of the worker process it belongs to (worker.ts). */
export interface LaneOwner {
  readonly pid: number;
  readonly app: string;
  readonly timeoutSecs: number;
  /**
   * Its runtime runs requests on an event loop: a request past LodgeTimeout is stopped
   * with ABORT, and the worker killed only when its loop does not answer.
   */
  readonly eventLoop: boolean;
  readonly dead: boolean;
  /** Being killed, or dead: what a lane still gets is nobody's. */
  readonly stopping: boolean;
  readonly log: { warn(s: string): void; debug(s: string): void };
  tellTenant(line: string): void;
  kill(reason: KillReason): void;
  protocolFailure(message: string): void;
  /** The lane's request ended; the lane can take another. */
  laneDone(lane: Lane): void;
  /** lodged carried a whole response of `bytes` (frames included) on a lane. */
  carried(bytes: number): void;
}

/**
 * One lane of a worker (PROTOCOL.md, "Lanes"): a socket pair that carries one request
 * at a time, carried through lodged or lent to mod_lodge. A WSGI worker has one; a Node
 * or ASGI worker one per request it may hold at once. The exchange towards mod_lodge
 * sees the lane as its worker.
 */
export class Lane implements WorkerHandle {
  state: 'idle' | 'busy' = 'idle';
  /** lodged closed it: the worker leaves, and it takes no request again. */
  closed = false;
  /** A request on it went past LodgeTimeout and was told ABORT: until it answers, its worker takes nothing new. */
  stalled = false;
  /** When its request began (Date.now()), for the status. */
  servedAt = 0;
  /** The REQ frame of its request, to name the request in the tenant's log. */
  reqFrame?: Buffer;
  private current?: Exchange;
  private aborting = false;
  private timer?: NodeJS.Timeout;
  private requestTimer?: NodeJS.Timeout;
  private lend?: Lend;
  /** Why a lent lane's worker was stopped, kept until mod_lodge asks (RELEASE LOST). */
  private lentError?: LodgeError;
  /** Bytes of the response being carried through lodged so far. */
  private carriedBytes = 0;
  private readonly scanner = new FrameScanner(
    (t) => t === FrameType.END || t === FrameType.ERROR,
    (t) => t === FrameType.HEAD || t === FrameType.DATA || t === FrameType.END || t === FrameType.ERROR,
  );

  constructor(
    private readonly owner: LaneOwner,
    private readonly socket: Socket,
    /** lodged's end of the lane, which a GRANT lends to mod_lodge. */
    readonly fd: number,
  ) {
    socket.on('error', (err) => owner.log.debug(`worker ${owner.pid}: socket: ${err.message}`));
    socket.on('drain', () => this.current?.resumeApache());
  }

  get pid(): number {
    return this.owner.pid;
  }

  get timeoutSecs(): number {
    return this.owner.timeoutSecs;
  }

  /** A request is in hand (not yet answered, failed or taken back). */
  get inHand(): boolean {
    return this.current !== undefined;
  }

  get lent(): boolean {
    return this.lend !== undefined;
  }

  /** Why the worker was stopped while this lane was lent, when it was. */
  get lentReason(): LodgeError | undefined {
    return this.lentError;
  }

  /** Hands the lane a request; `frames` are the REQ (and any BODY) frames held so far. */
  serve(ex: Exchange, frames: Buffer[]): void {
    this.state = 'busy';
    this.servedAt = Date.now();
    this.current = ex;
    this.aborting = false;
    this.reqFrame = frames[0];
    if (ex.borrows) return this.lendTo(ex, frames);
    this.armRequestTimer();
    ex.attach(this);
    if (frames.length && !this.send(frames)) ex.pauseApache();
  }

  // The first frames go from here; once they are in the kernel (the write's
  // callback), the GRANT lends the socket, so that mod_lodge's body frames follow
  // them rather than overtake them. Reading stops now: the response is mod_lodge's.
  // No request timer: mod_lodge times the lack of progress it alone can see.
  private lendTo(ex: Exchange, frames: Buffer[]): void {
    this.lend = 'lending';
    this.lentError = undefined;
    ex.attach(this);
    this.socket.pause();
    this.socket.cork();
    for (let i = 0; i < frames.length - 1; i++) this.socket.write(frames[i]);
    this.socket.write(frames[frames.length - 1], () => {
      if (this.current !== ex || this.lend !== 'lending' || this.owner.dead) return;
      this.lend = 'lent';
      ex.grant(this);
    });
    this.socket.uncork();
  }

  /**
   * mod_lodge hands the lane back (RELEASE). `gone`: its connection closed while it
   * held the lane, so where the lane's stream stands is unknown.
   */
  takeBack(ex: Exchange, verdict: number | 'gone'): void {
    if (this.current !== ex || !this.lend) return;
    if (verdict === Release.LOST) return this.lostSocket(ex);
    this.current = undefined;
    this.lend = undefined;
    if (this.owner.dead) return;
    if (verdict === Release.DONE) {
      this.state = 'idle';
      this.socket.resume();
      return this.owner.laneDone(this);
    }
    verdictStop(this.owner, verdict, this.requestLine());
  }

  // mod_lodge saw the socket close: the worker died or is dying (a runtime closes a
  // lane only when it leaves). The answer is why, which the exit tells; a worker that
  // closed its socket but lives on is stopped.
  private lostSocket(ex: Exchange): void {
    if (this.owner.dead) {
      this.current = undefined;
      this.lend = undefined;
      return ex.fail(this.lentError ?? new WorkerDiedError(`${this.owner.app}: worker ${this.pid} died during the request`));
    }
    this.lend = 'lost';
    this.arm(LOST_WAIT_MS, () => {
      this.owner.log.warn(`worker ${this.pid} (${this.owner.app}) closed its socket but did not exit; killed`);
      this.failCurrent(new WorkerDiedError(`${this.owner.app}: worker ${this.pid} closed its socket during the request`));
      this.owner.kill('protocol');
    });
  }

  send(frames: Buffer[]): boolean {
    if (this.owner.dead) return true;
    this.armRequestTimer();
    if (frames.length === 1) return this.socket.write(frames[0]);
    this.socket.cork();
    let ok = true;
    for (const f of frames) ok = this.socket.write(f);
    this.socket.uncork();
    return ok;
  }

  /** The client went away: tell the worker, then drop what it still sends. */
  abort(): void {
    if (this.state !== 'busy' || this.aborting) return;
    this.tellAbort(() => {
      this.owner.log.warn(`worker ${this.pid} (${this.owner.app}) did not stop within ${ABORT_GRACE_MS / 1000} s of its client leaving; killed`);
      this.owner.kill('stuck');
    });
  }

  private tellAbort(unanswered: () => void): void {
    this.aborting = true;
    this.socket.resume();
    this.socket.write(ABORT_FRAME);
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
    this.arm(ABORT_GRACE_MS, unanswered);
  }

  pauseOutput(): void {
    this.socket.pause();
  }

  resumeOutput(): void {
    this.socket.resume();
  }

  /** The worker leaves (or gave the lane up): it hears end of file here, and takes no request on it again. */
  close(): void {
    this.closed = true;
    this.socket.end();
  }

  /** The worker exited: whatever the lane still holds is over. */
  destroy(): void {
    this.disarm();
    this.socket.destroy();
  }

  /** What the worker sent on this lane once it was READY. */
  onData(chunk: Buffer): void {
    if (this.owner.stopping) return;
    if (this.state === 'idle') {
      // Between requests a lane has nothing to say: whatever comes is refused on its
      // first byte, so none of it is held.
      return this.owner.protocolFailure(`worker ${this.pid} (${this.owner.app}) sent ${chunk.length} bytes while idle (${describeStart(chunk)})`);
    }
    try {
      this.onResponseData(chunk);
    } catch (err) {
      if (!(err instanceof FrameError || err instanceof ProtocolError)) throw err;
      this.owner.protocolFailure(`worker ${this.pid} (${this.owner.app}) sent a bad frame: ${err.message}`);
    }
  }

  // The response passes through as the slices it arrived in; only frame headers are
  // looked at, to find the END or ERROR that closes it. After an ABORT (or a failure
  // already answered) what comes up to that END is dropped.
  private onResponseData(chunk: Buffer): void {
    const ex = this.aborting ? undefined : this.current;
    const end = this.scanner.scan(chunk);
    if (end < 0) {
      this.carriedBytes += chunk.length;
      if (!ex) return;
      this.armRequestTimer();
      ex.fromWorker(chunk, false);
      return;
    }
    if (ex) this.owner.carried(this.carriedBytes + end);
    this.carriedBytes = 0;
    this.disarm();
    this.current = undefined;
    this.state = 'idle';
    this.stalled = false;
    if (ex) ex.fromWorker(end === chunk.length ? chunk : chunk.subarray(0, end), true);
    this.aborting = false;
    this.socket.resume();
    if (end < chunk.length) {
      return this.owner.protocolFailure(`worker ${this.pid} (${this.owner.app}) sent ${chunk.length - end} bytes after its response`);
    }
    this.owner.laneDone(this);
  }

  /** Answers the request in hand with `err` (a lent one: once mod_lodge asks). */
  failCurrent(err: LodgeError): void {
    const ex = this.current;
    // Lent: mod_lodge reads the lane's socket, sees it close, and asks (RELEASE).
    if (ex && this.lend === 'lent') {
      this.lentError ??= err;
      return;
    }
    // 'lost': a watchdog's verdict, given before the worker died, says more.
    if (this.lend === 'lost' && this.lentError) err = this.lentError;
    this.current = undefined;
    this.lend = undefined;
    if (ex && !this.aborting) ex.fail(err, !this.scanner.atBoundary);
  }

  requestLine(): string {
    const f = this.reqFrame;
    if (!f || f[0] !== FrameType.REQ) return 'request';
    try {
      const pairs = decodePairs(f, 8);
      const get = (k: string) => pairs.find(([n]) => n === k)?.[1];
      return `${get('REQUEST_METHOD') ?? '?'} ${get('REQUEST_URI') ?? get('PATH_INFO') ?? '?'}`;
    } catch {
      return 'request';
    }
  }

  // The request timer measures time without progress; refresh() restarts it cheaply
  // on every frame that passes.
  private armRequestTimer(): void {
    if (this.requestTimer) {
      this.requestTimer.refresh();
      return;
    }
    this.requestTimer = setTimeout(() => this.timedOut(), this.owner.timeoutSecs * 1000);
  }

  // LodgeTimeout passed with no progress. A worker with one thread is stuck in the app:
  // killed. One with an event loop may be waiting on something that never comes, its
  // loop free: that request alone is stopped (ABORT), and the worker killed only when
  // its loop does not answer, as a `while (true) {}` would.
  private timedOut(): void {
    this.requestTimer = undefined;
    const { app, log } = this.owner;
    const secs = this.owner.timeoutSecs;
    const line = this.requestLine();
    const err = new WorkerTimeoutError(`${app}: request took longer than LodgeTimeout ${secs} s; stopped`);
    if (!this.owner.eventLoop) {
      log.warn(`worker ${this.pid} (${app}): request made no progress for LodgeTimeout ${secs} s; killed`);
      this.owner.tellTenant(`${line}: took longer than LodgeTimeout ${secs} s; stopped (worker ${this.pid} killed)`);
      this.failCurrent(err);
      return this.owner.kill('timeout');
    }
    log.warn(`worker ${this.pid} (${app}): request made no progress for LodgeTimeout ${secs} s; stopped`);
    this.owner.tellTenant(`${line}: took longer than LodgeTimeout ${secs} s; stopped`);
    this.failCurrent(err);
    this.stalled = true;
    this.tellAbort(() => {
      log.warn(`worker ${this.pid} (${app}): its event loop did not answer within ${ABORT_GRACE_MS / 1000} s of a request stopped at LodgeTimeout; killed`);
      this.owner.tellTenant(`worker ${this.pid}: its event loop was blocked (${line} ran past LodgeTimeout ${secs} s and did not stop); killed`);
      this.owner.kill('timeout');
    });
  }

  private arm(ms: number, fn: () => void): void {
    this.disarm();
    this.timer = setTimeout(fn, ms);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.timer = this.requestTimer = undefined;
  }
}

/** What mod_lodge saw of a request gone wrong (its RELEASE or VERDICT), said to both logs, and the worker stopped. */
export function verdictStop(owner: LaneOwner, verdict: number | 'gone', line: string): void {
  const secs = owner.timeoutSecs;
  const [host, tenant] =
    verdict === Release.TIMEOUT
      ? [`request made no progress for LodgeTimeout ${secs} s; killed`, `${line}: took longer than LodgeTimeout ${secs} s; stopped (worker ${owner.pid} killed)`]
      : verdict === Release.STUCK
        ? [`did not stop within ${ABORT_GRACE_MS / 1000} s of its client leaving; killed`, undefined]
        : verdict === Release.BROKEN
          ? ['sent a response that broke the frame protocol; killed', `${line}: the worker's response could not be read; stopped (worker ${owner.pid} killed)`]
          : ['lent to an Apache connection that closed mid-request; killed', undefined];
  owner.log.warn(`worker ${owner.pid} (${owner.app}) ${host}`);
  if (tenant) owner.tellTenant(tenant);
  owner.kill(verdict === Release.TIMEOUT ? 'timeout' : verdict === Release.STUCK ? 'stuck' : verdict === Release.BROKEN ? 'protocol' : 'abandoned');
}

/** The first bytes of what an idle lane sent, for the host's log: a frame header's type and length. */
function describeStart(chunk: Buffer): string {
  if (chunk.length < 8) return `${chunk.length} bytes of a frame header`;
  return `a ${frameName(chunk[0])} frame header announcing ${chunk.readUInt32BE(4)} bytes`;
}
