import { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { FrameReader, FrameError } from '../protocol/frame-reader';
import { FrameScanner } from '../protocol/frame-scanner';
import { ABORT_FRAME, FrameType, Release, decodePairs, frameName } from '../protocol/frames';
import { ABORT_GRACE_MS, FAIL_MAX, LOST_WAIT_MS, READY_MAX, WATCHED_FILES_MAX } from '../protocol/constants';
import { parseFail, parseReady } from '../protocol/schemas';
import { LodgeError, ProtocolError, WorkerDiedError, WorkerTimeoutError } from '../errors';
import { killGroup } from '../posix';
import { tenantLog, tenantText } from '../log';
import { WorkerGuard, watchdogs } from '../watchdog';
import { appendTenantLog } from '../watchdog/tenant-log';
import { Exchange, WorkerHandle } from './exchange';
import { AppSpec } from './app-spec';
import { confineReported } from './code-watch';
import { Identity } from './ownership';
import { appBook } from '../status/app-book';
import { KillReason, killReasonOf } from '../status/kill-reason';
import { releasedStatus } from '../status/request-hooks';
import { SPAWN_HELPER, SpawnOptions, WorkerProcess, startWorkerProcess } from './worker-process';
import { classifyExit } from './exit-classification';

/**
 * Seconds past LodgeTimeout a request from Apache may hold a worker before lodged stops
 * it without mod_lodge's VERDICT (which comes at LodgeTimeout itself).
 */
const BOARD_TIMEOUT_GRACE_S = 10;
/**
 * Why workers that exited lately went, by pid: a VERDICT LOST from mod_lodge may come
 * after the worker is gone from its pool (a watchdog killed it mid-request). Bounded:
 * the oldest go first, and none is kept past RECENT_EXIT_MS.
 */
const recentExits = new Map<number, { err: LodgeError; at: number }>();
const RECENT_EXITS_MAX = 256;
const RECENT_EXIT_MS = 30_000;

/** Why the worker with this pid exited, when it did so in the last RECENT_EXIT_MS. */
export function recentExitError(pid: number): LodgeError | undefined {
  const e = recentExits.get(pid);
  return e && Date.now() - e.at < RECENT_EXIT_MS ? e.err : undefined;
}

function noteExit(pid: number, err: LodgeError): void {
  // Its stack made text now: a stack not yet read holds every frame's objects (the
  // worker, its child process, its socket and that socket's 64 KiB read buffer) for as
  // long as the error is kept, ~65 KiB an exit, 16 MiB for the 256 kept (measured).
  void err.stack;
  const now = Date.now();
  for (const [old, e] of recentExits) {
    if (now - e.at < RECENT_EXIT_MS) break;
    recentExits.delete(old);
  }
  recentExits.delete(pid);
  recentExits.set(pid, { err, at: now });
  if (recentExits.size > RECENT_EXITS_MAX) recentExits.delete(recentExits.keys().next().value!);
}

/** An app slower than this to import is treated as failing to start. */
const START_TIMEOUT_MS = 60_000;
/** Bytes of a starting worker's stderr kept: its last line says why python could not start. */
const EARLY_STDERR_MAX = 4096;
/** How long an exit while starting waits for the rest of stderr (the reason it could not start). */
const STDERR_DRAIN_MS = 250;

/**
 * What a worker may send before it is ready: READY or FAIL, each capped (a worker
 * that is not serving a request has nothing to send that lodged should hold more of).
 * While it is idle it may send nothing at all (onData); while it serves a request its
 * frames pass through, each under FRAME_MAX, a stalled one ended by the request timer.
 */
const startFrameLimit = (type: number): number | undefined =>
  type === FrameType.READY ? READY_MAX : type === FrameType.FAIL ? FAIL_MAX : undefined;

/** Apps whose tenant was told that lodged watches only part of their files: told once per pool. */
const toldFiles = new WeakSet<AppSpec>();

/**
 * A request whose worker mod_lodge borrowed: `lending` until the GRANT is out (a
 * failure is still answered with ERROR), `lent` while mod_lodge reads the worker's
 * socket (lodged does not), `lost` once mod_lodge said the socket closed and waits
 * for lodged to say why.
 */
type Lend = 'lending' | 'lent' | 'lost';

export type WorkerState = 'starting' | 'idle' | 'busy' | 'dead';

export interface WorkerEvents {
  /** `files`: the modules the app imported from its own tree, to watch for edits. */
  ready(w: Worker, files: string[]): void;
  /** The worker finished its request and can take another. */
  free(w: Worker): void;
  /** lodged carried a whole response of `bytes` (frames included) from this worker. */
  carried(bytes: number): void;
  /** Before READY: the app could not be loaded. */
  startFailed(w: Worker, message: string): void;
  /** A request it took straight from Apache failed (VERDICT): answered `status`, `began` from performance.now() (0: unknown). */
  endedDirect?(status: number, began: number): void;
  /** It is asked to leave: one taking connections on the app's socket is told on its board slot too. */
  retiring?(w: Worker): void;
  /** Just before its exit is told: a last look at the app's scoreboard (boardSaw). */
  lastLook?(w: Worker): void;
  exited(w: Worker): void;
}


export class Worker implements WorkerHandle {
  state: WorkerState = 'starting';
  readonly pid: number;
  readonly startedAt = Date.now();
  requests = 0;
  /** Its READY said it takes connections on the app's socket (only then does mod_lodge go there). */
  acceptsOnSocket = false;
  private readonly child: ChildProcess;
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private readonly scanner = new FrameScanner(
    (t) => t === FrameType.END || t === FrameType.ERROR,
    (t) => t === FrameType.HEAD || t === FrameType.DATA || t === FrameType.END || t === FrameType.ERROR,
  );
  private current?: Exchange;
  private aborting = false;
  private timer?: NodeJS.Timeout;
  private requestTimer?: NodeJS.Timeout;
  private failMessage?: string;
  private earlyStderr = '';
  /** Memory, CPU, tasks, orphans: see watchdog/guard.ts. */
  private readonly guard: WorkerGuard;
  /** lodged killed it on purpose (and said why): its death is no crash. */
  private killedOnPurpose = false;
  /** Why it was stopped, for the status (status/app-record.ts); 'crash' when it died by itself. */
  exitReason?: KillReason;
  lastTold?: string;
  /** When the request in hand began (Date.now()), for the status. */
  servedAt = 0;
  private sentFail = false;
  /** The REQ frame of the request in hand, to name the request in the tenant's log. */
  private reqFrame?: Buffer;
  private lend?: Lend;
  /** Why a lent worker was stopped, kept until mod_lodge asks (RELEASE LOST). */
  private lentError?: LodgeError;
  /** The requestId (scoreboard) of the request from Apache the request watchdogs follow, and its line. */
  private boardRequest?: number;
  private boardLine?: string;
  /** That request as the status shows it (wall-clock ms at its start). */
  private boardNow?: { method: string; path: string; since: number };
  /** A watchdog's reason for killing the worker, whatever it was serving. */
  private killedFor?: LodgeError;
  /** Why the worker's exit ended a request, for a VERDICT LOST that asks after it. */
  private exitError?: LodgeError;
  /** Connections from Apache waiting to learn why a request it sent straight here was lost. */
  private readonly directLost: Array<{ ex: Exchange; began: number }> = [];
  /** lodged's end of the worker's socket, which a GRANT lends to mod_lodge. */
  readonly fd: number;
  private readonly tenantLog: string;
  /** Bytes of the response being carried through lodged so far. */
  private carriedBytes = 0;

  constructor(
    private readonly spec: AppSpec,
    private readonly identity: Identity,
    opts: SpawnOptions,
    private readonly events: WorkerEvents,
  ) {
    this.tenantLog = opts.tenantLog;
    this.guard = new WorkerGuard(watchdogs(), identity.uid, spec.limits, {
      app: `${spec.root}/${spec.entry}`,
      stop: (err, tenant) => this.stopNow(err, tenant),
    });
    let proc: WorkerProcess;
    try {
      proc = startWorkerProcess(spec, identity, opts, this.guard.cgroupDirs(), (pid) => this.guard.started(pid), (chunk) => this.onData(chunk));
    } catch (err) {
      this.guard.exited();
      throw err;
    }
    this.child = proc.child;
    this.socket = proc.socket;
    this.fd = proc.fd;
    this.pid = this.child.pid ?? -1;
    this.reader = new FrameReader((type, frame) => this.onStartFrame(type, frame), startFrameLimit);
    // Until the worker opens the tenant's log, its stderr is ours: it tells why
    // python itself could not start.
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      if (this.earlyStderr.length < EARLY_STDERR_MAX) this.earlyStderr += s.slice(0, EARLY_STDERR_MAX);
    });
    this.socket.on('error', (err) => this.log.debug(`worker ${this.pid}: socket: ${err.message}`));
    this.socket.on('drain', () => this.current?.resumeApache());
    this.child.on('error', (err) => {
      // lodge-spawn itself did not start (an exec failure of the runtime is its own word, on stderr)
      this.failMessage = `cannot start ${SPAWN_HELPER}: ${err.message}`;
      if (this.pid < 0) this.guard.exited();
    });
    let stderrDone = false;
    this.child.stderr!.once('close', () => (stderrDone = true));
    this.child.on('exit', (code, signal) => {
      if (stderrDone || this.state !== 'starting') return this.onExit(code, signal);
      // Why it could not start (python's own words, lodge-spawn's failed exec) may still
      // be in the pipe when the exit is told: read it first, for a moment at most (a
      // process it started may hold the pipe).
      let told = false;
      const go = () => {
        if (told) return;
        told = true;
        clearTimeout(timer);
        this.onExit(code, signal);
      };
      const timer = setTimeout(go, STDERR_DRAIN_MS);
      this.child.stderr!.once('close', go);
    });
    this.arm(START_TIMEOUT_MS, () => {
      this.failMessage = `${spec.entry} did not finish loading within ${START_TIMEOUT_MS / 1000} s`;
      this.tellTenant(`the app did not finish loading within ${START_TIMEOUT_MS / 1000} s; stopped`);
      this.kill('start');
    });
  }

  get app(): string {
    return `${this.spec.root}/${this.spec.entry}`;
  }

  /** lodged's log for lines about this worker: rate-limited per tenant. */
  private get log() {
    return tenantLog(this.identity.uid);
  }

  /** Hands the worker a request; `frames` are the REQ (and any BODY) frames held so far. */
  serve(ex: Exchange, frames: Buffer[]): void {
    this.state = 'busy';
    this.requests++;
    this.servedAt = Date.now();
    this.lastTold = undefined; // what the status says of a kill is about this request, not an older note
    this.current = ex;
    this.aborting = false;
    this.reqFrame = frames[0];
    this.guard.requestStarted();
    if (ex.borrows) return this.lendTo(ex, frames);
    this.armRequestTimer();
    ex.attach(this);
    if (frames.length && !this.send(frames)) ex.pauseApache();
  }

  /** For the status: the REQ frame of the request in hand, whether lent, whether being stopped. */
  statusView(): { req?: Buffer; lent: boolean; stopping: boolean; direct?: { method: string; path: string; since: number } } {
    return {
      req: this.state === 'busy' ? this.reqFrame : undefined,
      lent: this.lend !== undefined,
      stopping: this.killedOnPurpose,
      direct: this.state === 'idle' ? this.boardNow : undefined,
    };
  }

  get timeoutSecs(): number {
    return this.spec.limits.timeout;
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
      if (this.current !== ex || this.lend !== 'lending' || this.state === 'dead') return;
      this.lend = 'lent';
      ex.grant(this);
    });
    this.socket.uncork();
  }

  /**
   * mod_lodge hands the worker back (RELEASE). `gone`: its connection closed while it
   * held the worker, so where the worker's stream stands is unknown.
   */
  takeBack(ex: Exchange, verdict: number | 'gone'): void {
    if (this.current !== ex || !this.lend) return;
    if (verdict === Release.LOST) return this.lostSocket(ex);
    this.current = undefined;
    this.lend = undefined;
    if (this.state === 'dead') return;
    if (verdict === Release.DONE) {
      this.state = 'idle';
      this.socket.resume();
      return this.requestDone();
    }
    this.stopFor(verdict);
  }

  /**
   * mod_lodge's verdict on a request that came to this worker straight from Apache
   * (the app's own socket; a VERDICT frame): lodged saw only the failure. A LOST one is
   * answered once the worker's exit tells why; the others stop the worker.
   */
  directVerdict(ex: Exchange, verdict: number, status: number): void {
    // The board never counts a request its worker did not finish: counted here, with
    // what mod_lodge answered (for LOST, the ERROR it is about to get), from when the
    // board first showed it.
    const began = this.boardNow ? performance.now() - (Date.now() - this.boardNow.since) : 0;
    if (verdict !== Release.LOST) {
      this.events.endedDirect?.(releasedStatus(verdict, status), began);
      return this.stopFor(verdict);
    }
    if (this.state === 'dead') return this.answerLost({ ex, began });
    this.directLost.push({ ex, began });
    setTimeout(() => {
      if (this.state === 'dead') return;
      this.log.warn(`worker ${this.pid} (${this.app}) closed a connection from Apache mid-request but did not exit; killed`);
      this.kill('protocol');
    }, LOST_WAIT_MS).unref();
  }

  private answerLost({ ex, began }: { ex: Exchange; began: number }): void {
    const err = this.exitError ?? new WorkerDiedError(`${this.app}: worker ${this.pid} died during the request`);
    this.events.endedDirect?.(err.status, began);
    ex.fail(err);
  }

  // What mod_lodge saw of a request gone wrong, said to both logs, and the worker stopped.
  private stopFor(verdict: number | 'gone'): void {
    const line = this.requestLine();
    const secs = this.spec.limits.timeout;
    const [host, tenant] =
      verdict === Release.TIMEOUT
        ? [`request made no progress for LodgeTimeout ${secs} s; killed`, `${line}: took longer than LodgeTimeout ${secs} s; stopped (worker ${this.pid} killed)`]
        : verdict === Release.STUCK
          ? [`did not stop within ${ABORT_GRACE_MS / 1000} s of its client leaving; killed`, undefined]
          : verdict === Release.BROKEN
            ? ['sent a response that broke the frame protocol; killed', `${line}: the worker's response could not be read; stopped (worker ${this.pid} killed)`]
            : ['lent to an Apache connection that closed mid-request; killed', undefined];
    this.log.warn(`worker ${this.pid} (${this.app}) ${host}`);
    if (tenant) this.tellTenant(tenant);
    this.kill(verdict === Release.TIMEOUT ? 'timeout' : verdict === Release.STUCK ? 'stuck' : verdict === Release.BROKEN ? 'protocol' : 'abandoned');
  }

  // mod_lodge saw the socket close: the worker died or is dying. The answer is why,
  // which the exit tells; a worker that closed its socket but lives on is stopped.
  private lostSocket(ex: Exchange): void {
    if (this.state === 'dead') {
      this.current = undefined;
      this.lend = undefined;
      return ex.fail(this.lentError ?? new WorkerDiedError(`${this.app}: worker ${this.pid} died during the request`));
    }
    this.lend = 'lost';
    this.arm(LOST_WAIT_MS, () => {
      this.log.warn(`worker ${this.pid} (${this.app}) closed its socket but did not exit; killed`);
      this.failCurrent(new WorkerDiedError(`${this.app}: worker ${this.pid} closed its socket during the request`));
      this.kill('protocol');
    });
  }

  send(frames: Buffer[]): boolean {
    if (this.state === 'dead') return true;
    this.armRequestTimer();
    if (frames.length === 1) return this.socket.write(frames[0]);
    this.socket.cork();
    let ok = true;
    for (const f of frames) ok = this.socket.write(f);
    this.socket.uncork();
    return ok;
  }

  abort(): void {
    if (this.state !== 'busy' || this.aborting) return;
    this.aborting = true;
    this.socket.resume();
    this.socket.write(ABORT_FRAME);
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
    this.arm(ABORT_GRACE_MS, () => {
      this.log.warn(`worker ${this.pid} (${this.app}) did not stop within ${ABORT_GRACE_MS / 1000} s of its client leaving; killed`);
      this.kill('stuck');
    });
  }

  pauseOutput(): void {
    this.socket.pause();
  }

  resumeOutput(): void {
    this.socket.resume();
  }

  /** Kills the worker and everything it started, in its process group or not. */
  kill(reason?: KillReason): void {
    if (this.state === 'dead') return;
    this.exitReason ??= reason;
    this.killedOnPurpose = true;
    this.guard.killTree();
    try {
      killGroup(this.pid, 'SIGKILL');
    } catch (err) {
      this.log.error(`kill of worker group ${this.pid} failed: ${(err as Error).message}`);
    }
  }

  /**
   * What the app's scoreboard says this worker is doing with a request it took straight
   * from Apache: the request watchdogs (LodgeCPU, memory recycling) follow it as they
   * follow one lodged handed it, a new request (requestId) being a new start; one busy
   * far past LodgeTimeout (mod_lodge stopped waiting long ago, and its VERDICT did not
   * come) is stopped.
   */
  boardSaw(s: { busy: boolean; requestId: number; busyFor: number; method: string; path: string }): void {
    if (this.state !== 'idle' || this.killedOnPurpose) return; // lodged's own request: its own watch
    const was = this.boardRequest;
    if (was !== undefined && (!s.busy || s.requestId !== was)) {
      this.boardRequest = undefined;
      this.boardNow = undefined;
      if (this.recycleIfOver()) return;
    }
    if (!s.busy) return;
    if (this.boardRequest === undefined) {
      this.boardRequest = s.requestId;
      this.boardLine = `${s.method} ${s.path}`;
      this.boardNow = { method: s.method, path: s.path, since: Date.now() - s.busyFor * 1000 };
      this.guard.requestStarted();
    }
    const secs = this.spec.limits.timeout;
    if (s.busyFor > secs + BOARD_TIMEOUT_GRACE_S) {
      this.log.warn(`worker ${this.pid} (${this.app}) has held a request from Apache for ${Math.round(s.busyFor)} s, past LodgeTimeout ${secs} s; killed`);
      this.kill('timeout');
    }
  }

  /** Asks an idle worker to leave: closing fd 3 makes it exit by itself. */
  retire(): void {
    this.events.retiring?.(this);
    this.socket.end();
  }

  private onData(chunk: Buffer): void {
    // Being killed: what it still sends is nobody's.
    if (this.killedOnPurpose || this.state === 'dead') return;
    if (this.state === 'idle') {
      // Between requests a worker has nothing to say: whatever it sends is refused
      // on its first byte, so none of it is held.
      return this.protocolFailure(`worker ${this.pid} (${this.app}) sent ${chunk.length} bytes while idle (${describeStart(chunk)})`);
    }
    try {
      if (this.state === 'busy') this.onResponseData(chunk);
      else this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError || err instanceof ProtocolError)) throw err;
      this.protocolFailure(`worker ${this.pid} (${this.app}) sent a bad frame: ${err.message}`);
    }
  }

  // The response passes through as the slices it arrived in; only frame headers are
  // looked at, to find the END or ERROR that closes it.
  private onResponseData(chunk: Buffer): void {
    const ex = this.current!;
    const end = this.scanner.scan(chunk);
    if (end < 0) {
      this.carriedBytes += chunk.length;
      if (this.aborting) return;
      this.armRequestTimer();
      ex.fromWorker(chunk, false);
      return;
    }
    if (!this.aborting) this.events.carried(this.carriedBytes + end);
    this.carriedBytes = 0;
    this.disarm();
    this.current = undefined;
    this.state = 'idle';
    if (!this.aborting) ex.fromWorker(end === chunk.length ? chunk : chunk.subarray(0, end), true);
    this.aborting = false;
    this.socket.resume();
    if (end < chunk.length) {
      return this.protocolFailure(`worker ${this.pid} (${this.app}) sent ${chunk.length - end} bytes after its response`);
    }
    this.requestDone();
  }

  // The request (carried, or taken straight from Apache) ended: a worker a sample found
  // over a limit leaves now, and the pool replaces it on exit; true when it leaves.
  private recycleIfOver(): boolean {
    const why = this.guard.requestEnded();
    if (!why) return false;
    this.log.info(`worker ${this.pid} (${this.app}) recycled after its request: ${why}`);
    this.tellTenant(`worker ${this.pid} recycled after its request: ${why}`);
    this.retire();
    return true;
  }

  private requestDone(): void {
    if (this.recycleIfOver()) return;
    this.events.free(this);
  }

  private onStartFrame(type: number, frame: Buffer): void {
    if (this.state !== 'starting') {
      return this.protocolFailure(`worker ${this.pid} (${this.app}) sent ${frameName(type)} after READY`);
    }
    if (type === FrameType.READY) return this.onReady(frame);
    // FAIL (the only other frame the reader lets through): the worker wrote the
    // reason to the tenant's log itself; the host's log gets it clipped.
    this.sentFail = true;
    this.failMessage = tenantText(parseFail(frame));
  }

  private onReady(frame: Buffer): void {
    const ready = parseReady(frame);
    this.disarm();
    this.state = 'idle';
    this.acceptsOnSocket = ready.accepts === '1';
    this.guard.ready();
    const { files, outside, over } = confineReported(this.spec.root, ready.file);
    if ((outside > 0 || over > 0) && !toldFiles.has(this.spec)) {
      toldFiles.add(this.spec);
      const why = [
        outside > 0 ? `${outside} outside the app directory` : '',
        over > 0 ? `${over} past the first ${WATCHED_FILES_MAX}` : '',
      ].filter(Boolean).join(', ');
      this.tellTenant(`the worker reported ${ready.file.length} files to watch for edits; not watched: ${why}`);
      this.log.warn(`worker ${this.pid} (${this.app}) reported ${ready.file.length} files to watch; ${why} not watched`);
    }
    this.events.ready(this, files);
  }

  private protocolFailure(message: string): void {
    // Once is enough: the rest of a chunk it is being killed for says nothing new.
    if (this.killedOnPurpose || this.state === 'dead') return;
    this.log.error(message);
    const what = message.replace(`worker ${this.pid} (${this.app}) `, '');
    // Before READY, this is why the app did not start (what the failure answers say).
    if (this.state === 'starting') this.failMessage ??= `the worker ${what}`;
    this.tellTenant(`worker ${this.pid} stopped: ${what}`);
    this.failCurrent(new ProtocolError(message));
    this.kill('protocol');
  }

  /** A watchdog's verdict: the request in hand gets `err`, the tenant reads why. */
  private stopNow(err: LodgeError, tenant: string): void {
    if (this.state === 'dead') return;
    this.killedFor = err;
    this.tellTenant(this.current || this.boardRequest !== undefined ? `${this.requestLine()}: ${tenant}` : tenant);
    this.failCurrent(err);
    this.kill(killReasonOf(err));
  }

  // Written by lodged as the tenant (watchdog/tenant-log.ts): what the dead worker
  // cannot write itself.
  private tellTenant(line: string): void {
    this.lastTold = line;
    appendTenantLog(this.spec.root, this.tenantLog, this.identity.uid, this.identity.gid, line);
  }

  private requestLine(): string {
    const f = this.reqFrame;
    // A request from Apache straight to the app: as its scoreboard slot names it (the
    // REQ frame kept is then an older request's, one lodged carried). Asked in onExit
    // too, once the state is 'dead', so what counts is that lodged handed it none.
    if (!this.current && this.boardRequest !== undefined && this.boardLine) return this.boardLine;
    if (!f || f[0] !== FrameType.REQ) return 'request';
    try {
      const pairs = decodePairs(f, 8);
      const get = (k: string) => pairs.find(([n]) => n === k)?.[1];
      return `${get('REQUEST_METHOD') ?? '?'} ${get('REQUEST_URI') ?? get('PATH_INFO') ?? '?'}`;
    } catch {
      return 'request';
    }
  }

  private failCurrent(err: LodgeError): void {
    const ex = this.current;
    // Lent: mod_lodge reads the worker's socket, sees it close, and asks (RELEASE).
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

  // The request timer measures time without progress; refresh() restarts it cheaply
  // on every frame that passes.
  private armRequestTimer(): void {
    if (this.requestTimer) {
      this.requestTimer.refresh();
      return;
    }
    const secs = this.spec.limits.timeout;
    this.requestTimer = setTimeout(() => {
      this.log.warn(`worker ${this.pid} (${this.app}): request made no progress for LodgeTimeout ${secs} s; killed`);
      this.tellTenant(`${this.requestLine()}: took longer than LodgeTimeout ${secs} s; stopped (worker ${this.pid} killed)`);
      this.failCurrent(new WorkerTimeoutError(`${this.app}: request took longer than LodgeTimeout ${secs} s; stopped`));
      this.kill('timeout');
    }, secs * 1000);
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

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    // A request it took straight from Apache is named in the exit's lines, if the
    // board shows one, even one begun since the pool's last read.
    this.events.lastLook?.(this);
    const wasStarting = this.state === 'starting';
    this.state = 'dead';
    this.disarm();
    // Whatever it started dies with it: its process group, and its cgroup, which
    // holds what left the group (setsid) too.
    try {
      killGroup(this.pid, 'SIGKILL');
    } catch {
      /* the group is gone already: nothing left to kill */
    }
    const cause = this.guard.exitCause();
    this.guard.exited();
    const out = classifyExit({
      pid: this.pid,
      app: this.app,
      code,
      signal,
      wasStarting,
      killedOnPurpose: this.killedOnPurpose,
      killedFor: this.exitReason,
      memoryCause: cause,
      request: this.current || this.boardRequest !== undefined ? this.requestLine() : undefined,
      failMessage: this.failMessage,
      sentFail: this.sentFail,
      earlyStderr: this.earlyStderr,
    });
    this.exitReason = out.reason;
    if (out.hostLog) this.log.warn(out.hostLog);
    if (out.tenantMessage) this.tellTenant(out.tenantMessage);
    if (out.startFailure !== undefined) this.events.startFailed(this, out.startFailure);
    else if (out.requestError) this.failCurrent(out.requestError);
    this.reqFrame = undefined;
    const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    this.exitError = this.lentError ?? this.killedFor ?? cause?.err ?? new WorkerDiedError(`${this.app}: worker ${this.pid} ${how} during the request`);
    noteExit(this.pid, this.exitError);
    for (const lost of this.directLost.splice(0)) this.answerLost(lost);
    this.socket.destroy();
    appBook.get(this.spec.root)?.workerExited(this);
    this.events.exited(this);
  }
}

/** The first bytes of what an idle worker sent, for the host's log: a frame header's type and length. */
function describeStart(chunk: Buffer): string {
  if (chunk.length < 8) return `${chunk.length} bytes of a frame header`;
  return `a ${frameName(chunk[0])} frame header announcing ${chunk.readUInt32BE(4)} bytes`;
}
