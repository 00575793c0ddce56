import { ChildProcess } from 'node:child_process';
import { FrameReader, FrameError } from '../protocol/frame-reader';
import { FrameType, Release, frameName } from '../protocol/frames';
import { ABORT_GRACE_MS, FAIL_MAX, LOST_WAIT_MS, READY_MAX, WATCHED_FILES_MAX } from '../protocol/constants';
import { parseFail, parseReady } from '../protocol/schemas';
import { LodgeError, ProtocolError, WorkerDiedError } from '../errors';
import { killGroup } from '../posix';
import { tenantLog, tenantText } from '../log';
import { WorkerGuard, watchdogs } from '../watchdog';
import { appendTenantLog } from '../watchdog/tenant-log';
import { Exchange } from './exchange';
import { AppSpec } from './app-spec';
import { confineReported } from './code-watch';
import { Identity } from './ownership';
import { appBook } from '../status/app-book';
import { KillReason, killReasonOf } from '../status/kill-reason';
import { releasedStatus } from '../status/request-hooks';
import { SPAWN_HELPER, SpawnOptions, WorkerProcess, startWorkerProcess } from './worker-process';
import { classifyExit } from './exit-classification';
import { Lane, LaneOwner, verdictStop } from './lane';
import { noteExit } from './recent-exits';
import type { SlotSeen } from './app-board';

/**
 * Seconds past LodgeTimeout a request from Apache may hold a worker before lodged stops
 * it without mod_lodge's VERDICT (which comes at LodgeTimeout itself).
 */
const BOARD_TIMEOUT_GRACE_S = 10;

/** An app slower than this to import is treated as failing to start. */
const START_TIMEOUT_MS = 60_000;
/** Bytes of a starting worker's stderr kept: its last line says why python could not start. */
const EARLY_STDERR_MAX = 4096;
/** How long an exit while starting waits for the rest of stderr (the reason it could not start). */
const STDERR_DRAIN_MS = 250;

/**
 * What a worker may send before it is ready: READY or FAIL, each capped (a worker
 * that is not serving a request has nothing to send that lodged should hold more of).
 * While a lane is idle it may send nothing at all (lane.ts); while it serves a request
 * its frames pass through, each under FRAME_MAX, a stalled one ended by the request timer.
 */
const startFrameLimit = (type: number): number | undefined =>
  type === FrameType.READY ? READY_MAX : type === FrameType.FAIL ? FAIL_MAX : undefined;

/** Apps whose tenant was told that lodged watches only part of their files: told once per pool. */
const toldFiles = new WeakSet<AppSpec>();

export type WorkerState = 'starting' | 'idle' | 'busy' | 'dead';

export interface WorkerEvents {
  /** `files`: the modules the app imported from its own tree, to watch for edits. */
  ready(w: Worker, files: string[]): void;
  /** A lane of the worker finished its request and can take another. */
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

/**
 * One worker process of an app: its runtime, its watchdogs, and its lanes (lane.ts),
 * each of which carries one request at a time. A WSGI worker has one lane; a Node or
 * ASGI worker several (LodgeConcurrency), served at once on its event loop.
 */
export class Worker implements LaneOwner {
  readonly pid: number;
  readonly startedAt = Date.now();
  requests = 0;
  /** Its READY said it takes connections on the app's socket (only then does mod_lodge go there). */
  acceptsOnSocket = false;
  readonly eventLoop: boolean;
  private starting = true;
  dead = false;
  private retiring = false;
  private readonly child: ChildProcess;
  private readonly lanes: Lane[];
  private readonly reader: FrameReader;
  private timer?: NodeJS.Timeout;
  private failMessage?: string;
  private earlyStderr = '';
  /** Memory, CPU, tasks, orphans: see watchdog/guard.ts. */
  private readonly guard: WorkerGuard;
  /** lodged killed it on purpose (and said why): its death is no crash. */
  private killedOnPurpose = false;
  /** Why it was stopped, for the status (status/app-record.ts); 'crash' when it died by itself. */
  exitReason?: KillReason;
  lastTold?: string;
  private sentFail = false;
  /**
   * The requests from Apache (the app's socket) the last read of the board showed in
   * hand, by slot: a WSGI worker has one slot, a Node worker one per lane. `since` is
   * wall-clock ms at the request's start.
   */
  private readonly direct = new Map<number, { requestId: number; method: string; path: string; since: number }>();
  /** A request from the app's socket was stopped at LodgeTimeout: none is handed over until the worker shows its loop answers. */
  private directStalled = false;
  /** A watchdog's reason for killing the worker, whatever it was serving. */
  private killedFor?: LodgeError;
  /** Why the worker's exit ended a request, for a VERDICT LOST that asks after it. */
  private exitError?: LodgeError;
  /** Connections from Apache waiting to learn why a request it sent straight here was lost. */
  private readonly directLost: Array<{ ex: Exchange; began: number }> = [];
  private readonly tenantLog: string;

  constructor(
    private readonly spec: AppSpec,
    private readonly identity: Identity,
    opts: SpawnOptions,
    private readonly events: WorkerEvents,
  ) {
    this.tenantLog = opts.tenantLog;
    this.eventLoop = spec.kind !== 'wsgi';
    this.guard = new WorkerGuard(watchdogs(), identity.uid, spec.limits, {
      app: `${spec.root}/${spec.entry}`,
      stop: (err, tenant) => this.stopNow(err, tenant),
    });
    let proc: WorkerProcess;
    try {
      proc = startWorkerProcess(spec, identity, opts, this.guard.cgroupDirs(), (pid) => this.guard.started(pid), (lane, chunk) => this.onData(lane, chunk));
    } catch (err) {
      this.guard.exited();
      throw err;
    }
    this.child = proc.child;
    this.pid = this.child.pid ?? -1;
    this.lanes = proc.lanes.map(({ socket, fd }) => new Lane(this, socket, fd));
    this.reader = new FrameReader((type, frame) => this.onStartFrame(type, frame), startFrameLimit);
    // Until the worker opens the tenant's log, its stderr is ours: it tells why
    // python itself could not start.
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      if (this.earlyStderr.length < EARLY_STDERR_MAX) this.earlyStderr += s.slice(0, EARLY_STDERR_MAX);
    });
    this.child.on('error', (err) => {
      // lodge-spawn itself did not start (an exec failure of the runtime is its own word, on stderr)
      this.failMessage = `cannot start ${SPAWN_HELPER}: ${err.message}`;
      if (this.pid < 0) this.guard.exited();
    });
    let stderrDone = false;
    this.child.stderr!.once('close', () => (stderrDone = true));
    this.child.on('exit', (code, signal) => {
      if (stderrDone || !this.starting) return this.onExit(code, signal);
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

  get state(): WorkerState {
    if (this.dead) return 'dead';
    if (this.starting) return 'starting';
    return this.inFlight > 0 ? 'busy' : 'idle';
  }

  get app(): string {
    return `${this.spec.root}/${this.spec.entry}`;
  }

  get stopping(): boolean {
    return this.killedOnPurpose || this.dead;
  }

  get timeoutSecs(): number {
    return this.spec.limits.timeout;
  }

  /** lodged's log for lines about this worker: rate-limited per tenant. */
  get log() {
    return tenantLog(this.identity.uid);
  }

  /** Requests it took from the app's socket, as the board last showed them. */
  get directInFlight(): number {
    return this.direct.size;
  }

  /** Requests lodged handed it that are not over yet. */
  get inFlight(): number {
    let n = 0;
    for (const l of this.lanes) if (l.state === 'busy') n++;
    return n;
  }

  /**
   * Requests it can take now. None while a request stopped at LodgeTimeout has not
   * answered its ABORT: its event loop may be blocked, and whatever it took would wait.
   */
  freeLanes(): number {
    if (this.starting || this.dead || this.retiring || this.directStalled) return 0;
    let n = 0;
    for (const l of this.lanes) {
      if (l.stalled) return 0;
      if (l.state === 'idle' && !l.closed) n++;
    }
    // A worker with several lanes shares them with the requests it takes from the app's
    // socket (a WSGI worker's one request from there ranks it last instead: rank()).
    return this.eventLoop ? Math.max(0, n - this.direct.size) : n;
  }

  /** When the oldest request in hand began (Date.now()), for the status. */
  get servedAt(): number {
    let at = 0;
    for (const l of this.lanes) if (l.state === 'busy' && (at === 0 || l.servedAt < at)) at = l.servedAt;
    return at;
  }

  /** Hands a free lane a request; `frames` are the REQ (and any BODY) frames held so far. */
  serve(ex: Exchange, frames: Buffer[]): void {
    const lane = this.lanes.find((l) => l.state === 'idle' && !l.closed);
    if (!lane) throw new Error(`worker ${this.pid}: serve() with no free lane`);
    // The request watchdogs (LodgeCPU, memory recycling) follow the worker's busy time.
    if (this.inFlight + this.direct.size === 0) this.guard.requestStarted();
    this.requests++;
    this.lastTold = undefined; // what the status says of a kill is about this request, not an older note
    lane.serve(ex, frames);
  }

  /** For the status: a request in hand (the oldest), whether lent, whether being stopped, how many. */
  statusView(): { req?: Buffer; lent: boolean; stopping: boolean; inFlight: number; direct?: { method: string; path: string; since: number } } {
    const busy = this.lanes.filter((l) => l.state === 'busy').sort((a, b) => a.servedAt - b.servedAt)[0];
    const oldest = this.oldestDirect();
    return {
      req: busy?.reqFrame,
      lent: busy?.lent ?? false,
      stopping: this.killedOnPurpose,
      inFlight: this.inFlight + this.direct.size,
      direct: this.state === 'idle' && oldest ? { method: oldest.method, path: oldest.path, since: oldest.since } : undefined,
    };
  }

  private oldestDirect(): { requestId: number; method: string; path: string; since: number } | undefined {
    let at: ReturnType<Worker['oldestDirect']>;
    for (const d of this.direct.values()) if (!at || d.since < at.since) at = d;
    return at;
  }

  /** A lane's request ended. */
  laneDone(lane: Lane): void {
    // With other requests still in hand, the CPU the worker used counts from here on.
    const why = this.inFlight + this.direct.size === 0 ? this.guard.requestEnded() : this.guard.requestEndedAmid();
    if (why) return this.recycle(why);
    if (this.retiring) return lane.close();
    this.events.free(this);
  }

  carried(bytes: number): void {
    this.events.carried(bytes);
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
    const oldest = this.oldestDirect();
    const began = oldest ? performance.now() - (Date.now() - oldest.since) : 0;
    if (verdict !== Release.LOST) {
      this.events.endedDirect?.(releasedStatus(verdict, status), began);
      if (verdict === Release.TIMEOUT && this.eventLoop) return this.directTimedOut();
      return verdictStop(this, verdict, this.requestLine());
    }
    if (this.dead) return this.answerLost({ ex, began });
    this.directLost.push({ ex, began });
    setTimeout(() => {
      if (this.dead) return;
      this.log.warn(`worker ${this.pid} (${this.app}) closed a connection from Apache mid-request but did not exit; killed`);
      this.kill('protocol');
    }, LOST_WAIT_MS).unref();
  }

  /**
   * A request it took from the app's socket ran past LodgeTimeout: mod_lodge answered
   * 504 and closed its connection, which ends the request in a worker whose event loop
   * runs (lane.ts of the runtime). As for a carried one (lane.ts timedOut), the worker is
   * killed only when its loop does not answer: the board still shows a request that old
   * ABORT_GRACE later, as a `while (true) {}` leaves it.
   */
  private directTimedOut(): void {
    const secs = this.spec.limits.timeout;
    const line = this.requestLine();
    this.log.warn(`worker ${this.pid} (${this.app}): request made no progress for LodgeTimeout ${secs} s; stopped`);
    this.tellTenant(`${line}: took longer than LodgeTimeout ${secs} s; stopped`);
    this.directStalled = true;
    setTimeout(() => {
      this.directStalled = false;
      if (this.dead) return;
      this.events.lastLook?.(this);
      const held = [...this.direct.values()];
      const now = Date.now();
      if (!held.some((d) => now - d.since >= secs * 1000)) return;
      // A blocked loop begins no request after the one that blocked it: the youngest the
      // board shows is the one to name (an older one only waits behind it).
      const culprit = held.reduce((a, b) => (b.since > a.since ? b : a));
      this.log.warn(`worker ${this.pid} (${this.app}): its event loop did not answer within ${ABORT_GRACE_MS / 1000} s of a request stopped at LodgeTimeout; killed`);
      this.tellTenant(`worker ${this.pid}: its event loop was blocked (${culprit.method} ${culprit.path} ran past LodgeTimeout ${secs} s and did not stop); killed`);
      this.kill('timeout');
    }, ABORT_GRACE_MS).unref();
  }

  private answerLost({ ex, began }: { ex: Exchange; began: number }): void {
    const err = this.exitError ?? new WorkerDiedError(`${this.app}: worker ${this.pid} died during the request`);
    this.events.endedDirect?.(err.status, began);
    ex.fail(err);
  }

  /** Kills the worker and everything it started, in its process group or not. */
  kill(reason?: KillReason): void {
    if (this.dead) return;
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
  boardSaw(slots: SlotSeen[]): void {
    // A WSGI worker busy with lodged's own request: that request's own watch.
    if (this.killedOnPurpose || (!this.eventLoop && this.state !== 'idle')) return;
    let why: string | undefined;
    for (const s of slots) {
      const was = this.direct.get(s.slot);
      if (was && (!s.busy || s.requestId !== was.requestId)) {
        this.direct.delete(s.slot);
        why = (this.inFlight + this.direct.size === 0 ? this.guard.requestEnded() : this.guard.requestEndedAmid()) ?? why;
      }
    }
    if (why) return this.recycle(why);
    const secs = this.spec.limits.timeout;
    for (const s of slots) {
      if (!s.busy) continue;
      if (!this.direct.has(s.slot)) {
        if (this.inFlight + this.direct.size === 0) this.guard.requestStarted();
        this.direct.set(s.slot, { requestId: s.requestId, method: s.method, path: s.path, since: Date.now() - s.busyFor * 1000 });
      }
      if (s.busyFor > secs + BOARD_TIMEOUT_GRACE_S) {
        this.log.warn(`worker ${this.pid} (${this.app}) has held a request from Apache for ${Math.round(s.busyFor)} s, past LodgeTimeout ${secs} s; killed`);
        return this.kill('timeout');
      }
    }
  }

  /**
   * Asks the worker to leave: its idle lanes close now, busy ones once their request
   * is answered; the runtime exits when all are closed.
   */
  retire(): void {
    if (!this.retiring) {
      this.retiring = true;
      this.events.retiring?.(this);
    }
    for (const l of this.lanes) if (l.state === 'idle' && !l.closed) l.close();
  }

  // A sample found it over a limit: it leaves once its requests are answered, and the
  // pool replaces it on exit.
  private recycle(why: string): void {
    this.log.info(`worker ${this.pid} (${this.app}) recycled after its request: ${why}`);
    this.tellTenant(`worker ${this.pid} recycled after its request: ${why}`);
    this.retire();
  }

  private onData(lane: number, chunk: Buffer): void {
    if (this.stopping) return;
    if (!this.starting) return this.lanes[lane].onData(chunk);
    if (lane !== 0) return this.protocolFailure(`worker ${this.pid} (${this.app}) sent ${chunk.length} bytes on lane ${lane} before READY`);
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError || err instanceof ProtocolError)) throw err;
      this.protocolFailure(`worker ${this.pid} (${this.app}) sent a bad frame: ${err.message}`);
    }
  }

  private onStartFrame(type: number, frame: Buffer): void {
    if (!this.starting) {
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
    this.starting = false;
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

  protocolFailure(message: string): void {
    // Once is enough: the rest of a chunk it is being killed for says nothing new.
    if (this.stopping) return;
    this.log.error(message);
    const what = message.replace(`worker ${this.pid} (${this.app}) `, '');
    // Before READY, this is why the app did not start (what the failure answers say).
    if (this.starting) this.failMessage ??= `the worker ${what}`;
    this.tellTenant(`worker ${this.pid} stopped: ${what}`);
    this.failAll(new ProtocolError(message));
    this.kill('protocol');
  }

  /** A watchdog's verdict: the requests in hand get `err`, the tenant reads why. */
  private stopNow(err: LodgeError, tenant: string): void {
    if (this.dead) return;
    this.killedFor = err;
    this.tellTenant(this.inHand() || this.direct.size > 0 ? `${this.requestLine()}: ${tenant}` : tenant);
    this.failAll(err);
    this.kill(killReasonOf(err));
  }

  // Written by lodged as the tenant (watchdog/tenant-log.ts): what the dead worker
  // cannot write itself.
  tellTenant(line: string): void {
    this.lastTold = line;
    appendTenantLog(this.spec.root, this.tenantLog, this.identity.uid, this.identity.gid, line);
  }

  private inHand(): boolean {
    return this.lanes.some((l) => l.inHand);
  }

  // The request the tenant's log names: the oldest lodged handed it, or (none in hand)
  // one it took straight from Apache, as its scoreboard slot names it.
  private requestLine(): string {
    const lanes = this.lanes.filter((l) => l.inHand).sort((a, b) => a.servedAt - b.servedAt);
    const oldest = this.oldestDirect();
    if (lanes.length === 0 && oldest) return `${oldest.method} ${oldest.path}`;
    if (lanes.length === 0) return 'request';
    const more = lanes.length > 1 ? ` (and ${lanes.length - 1} more request(s) in hand)` : '';
    return lanes[0].requestLine() + more;
  }

  private failAll(err: LodgeError): void {
    for (const l of this.lanes) l.failCurrent(err);
  }

  private arm(ms: number, fn: () => void): void {
    this.disarm();
    this.timer = setTimeout(fn, ms);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    // A request it took straight from Apache is named in the exit's lines, if the
    // board shows one, even one begun since the pool's last read.
    this.events.lastLook?.(this);
    const wasStarting = this.starting;
    this.starting = false;
    this.dead = true;
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
      request: this.inHand() || this.direct.size > 0 ? this.requestLine() : undefined,
      failMessage: this.failMessage,
      sentFail: this.sentFail,
      earlyStderr: this.earlyStderr,
    });
    this.exitReason = out.reason;
    if (out.hostLog) this.log.warn(out.hostLog);
    if (out.tenantMessage) this.tellTenant(out.tenantMessage);
    if (out.startFailure !== undefined) this.events.startFailed(this, out.startFailure);
    else if (out.requestError) this.failAll(out.requestError);
    const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    this.exitError = this.lanes.map((l) => l.lentReason).find((e) => e !== undefined) ?? this.killedFor ?? cause?.err ?? new WorkerDiedError(`${this.app}: worker ${this.pid} ${how} during the request`);
    noteExit(this.pid, this.exitError);
    for (const lost of this.directLost.splice(0)) this.answerLost(lost);
    for (const l of this.lanes) {
      l.reqFrame = undefined;
      l.destroy();
    }
    appBook.get(this.spec.root)?.workerExited(this);
    this.events.exited(this);
  }
}
