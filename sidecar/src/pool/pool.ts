import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { AppStartError, LodgeError, QueueFullError, RefusedError, TenantShareError } from '../errors';
import { log, tenantLog } from '../log';
import { watchdogs } from '../watchdog';
import { appendTenantLog } from '../watchdog/tenant-log';
import { AppSpec, lanesOf } from './app-spec';
import { AppBoard, SlotSeen } from './app-board';
import { CodeWatch } from './code-watch';
import { declarationKey } from './declared-app';
import { Exchange } from './exchange';
import { noteTicket } from './recent-exits';
import { HostRules, Identity, checkOwnership } from './ownership';
import { StartBackoff } from './start-backoff';
import { Worker } from './worker';
import { SpawnOptions } from './worker-process';
import { NoteGate, ShareMember, TenantCaps, TenantShare } from './tenant-share';
import { appBook } from '../status/app-book';
import { listenQueue, listenUnix, pending } from '../posix';
import type { AppRecord } from '../status/app-record';

export interface PoolOptions extends SpawnOptions {
  maxQueue: number;
  queueTimeoutMs: number;
  /** The host's ownership rules, checked again before each worker starts. */
  rules: HostRules;
  /** The tenant's share over all its apps, and its caps as they apply to this app. */
  share: TenantShare;
  caps: TenantCaps;
}

/** A tenant past its share reads one line a second per app, however many are refused. */
const shareNotes = new NoteGate(1000);

interface Waiter {
  ex: Exchange;
  frames: Buffer[];
  timer: NodeJS.Timeout;
}

/**
 * Bodyless requests borrow the worker too once this app's responses average this
 * much: lending costs a round trip (about 30 µs here: a hello request lent ran at
 * 0.70× of one carried), carrying costs two more copies of every byte (a 1 MiB
 * response lent ran at 1.2× of one carried).
 */
const LEND_AT_BYTES = 128 * 1024;
/**
 * How often an app reached on its own socket is looked at: edits (code-watch.ts
 * throttles the stats to one pass in 500 ms), its board, its queue. A read of the
 * board is one pread of a few KiB; 100 ms keeps an edit live within the second a
 * carried request gets (the throttle plus a worker's start) and the status current.
 */
const ROUTE_TICK_MS = 100;
/** One bodyless request in this many is still carried, to keep the average current. */
const MEASURE_EVERY = 16;

/**
 * The workers of one app (one app directory, one owner). Each worker holds up to
 * `lanes` requests at once (one for WSGI, LodgeConcurrency for Node and ASGI); up to
 * `limits.processes` workers, started on demand; past that, a bounded FIFO queue;
 * past that, 503.
 *
 *   waiting requests ──▶ worker with a free lane (fewest in hand; the warmest) ──▶ lane busy ──END──▶ free
 *                   └──▶ spawn while starting × lanes < waiting and workers < max
 *
 * Workers belong to a generation of the code. When the app's files change, one
 * worker of the next generation (the candidate) starts while the old ones go on
 * serving. Once it is ready, old workers leave as soon as they are idle; if it fails
 * to load, the old ones keep serving and the error is in the tenant's log.
 */
export class Pool implements ShareMember {
  readonly workers = new Set<Worker>();
  /** Requests one worker holds at once (app-spec.ts lanesOf). */
  private readonly lanes: number;
  /** Workers leaving so that another app of the tenant can start one: their place is not ours. */
  private readonly leavingForSibling = new Set<Worker>();
  /**
   * Workers asked to leave that still hold requests (a Node or ASGI worker's other
   * lanes: a WebSocket may last hours). They take nothing new, so LodgeProcesses does
   * not count them: the app is not left without a worker while they finish.
   */
  private readonly leaving = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly queue: Waiter[] = [];
  private readonly gens = new Map<Worker, number>();
  private starting = 0;
  private readonly backoff = new StartBackoff();
  private gen = 0;
  /** The generation new requests run on; older workers leave when they finish. */
  private liveGen = 0;
  private candidate?: { worker: Worker; snap: Map<string, number> };
  private failedSnap?: Map<string, number>;
  private readonly watch: CodeWatch;
  private retired = false;
  get isRetired(): boolean {
    return this.retired;
  }
  lastUsed = Date.now();
  served = 0;
  /** Size of the responses lodged carried, as a moving average. */
  private carriedAvg = 0;
  private bodylessSeen = 0;
  reloads = 0;
  /** This app's counters in the status model, kept across pools (status/app-record.ts). */
  readonly stats: AppRecord;
  /** The app's own listening socket, which its workers accept on and mod_lodge connects to. */
  private route?: { path: string; fd: number; tick: NodeJS.Timeout; board: AppBoard; shut: boolean };
  /** Requests from the app's socket that the last read of the board found in hand. */
  private boardBusy = 0;
  /** Connections the last read of the board found waiting in the app's listen queue. */
  private socketQueue = 0;
  /** The scoreboard slot of each worker started while the app had its socket. */
  private readonly slotOf = new Map<Worker, number>();
  /** Workers that hold the app's socket (started while it had one), and those of them ready. */
  private readonly onSocket = new Set<Worker>();
  private readonly routedReady = new Set<Worker>();
  /** 1 when the last read of the board found connections waiting on the app's socket and every worker busy. */
  private socketWaiting = 0;
  /** The last read of the board found requests held back by the worker cap. */
  private capHeld = false;

  constructor(
    readonly spec: AppSpec,
    readonly identity: Identity,
    private readonly opts: PoolOptions,
  ) {
    this.lanes = lanesOf(spec);
    this.watch = new CodeWatch(spec.root, spec.entry);
    opts.share.join(this);
    this.stats = appBook.open(spec, identity.uid);
  }

  get name(): string {
    return `${this.spec.root}/${this.spec.entry}`;
  }

  /** Finds a worker for the request now, or queues it, or fails it. */
  acquire(ex: Exchange, frames: Buffer[]): void {
    this.lastUsed = Date.now();
    this.checkCode();
    // A request here for an app with a socket (its first, one past a full listen queue,
    // one that found the socket moved aside): the board as it is now, not as the last
    // tick saw it, for the share and for which worker is free.
    this.readBoard();
    if (!this.opts.share.admits(this, this.opts.caps)) return this.refuseForShare(ex);
    // mod_lodge sends a request here when the app's own socket's queue is full (and
    // on a route's first request): then no worker is idle, whatever lodged last saw.
    const onSocket = this.route ? Math.max(0, listenQueue(this.route.fd)) : 0;
    const w = onSocket < this.opts.maxQueue ? this.takeIdle() : undefined;
    if (w) return w.serve(ex, frames);
    if (this.counted() >= this.spec.limits.processes) this.stats.capReached++;
    const failed = this.backoff.failed;
    if (failed !== undefined && this.liveWorkers() === 0 && !this.backoff.release(Date.now(), this.entryMtime())) {
      return ex.fail(new AppStartError(failed));
    }
    const waiting = this.queue.length + onSocket;
    if (waiting >= this.opts.maxQueue + this.spawnRoom()) {
      const err = new QueueFullError(`${this.name}: all ${this.spec.limits.processes} workers busy and ${waiting} requests waiting`);
      return ex.fail(err);
    }
    const timer = setTimeout(() => this.expire(waiter), this.opts.queueTimeoutMs);
    const waiter: Waiter = { ex, frames, timer };
    this.queue.push(waiter);
    this.stats.queued(this.queue.length);
    this.maybeSpawn();
  }

  /**
   * Makes the app's listening socket, for mod_lodge to reach the workers without
   * lodged: named for the app's declaration (the same after lodged restarts), owned
   * by the web server's user `peerUid` alone. Workers started from now on accept on it.
   */
  ensureRoute(dir: string, peerUid: number, peerGid: number): void {
    if (this.route || this.retired) return;
    const name = createHash('sha256').update(declarationKey(this.spec)).digest('hex').slice(0, 32);
    const file = path.join(dir, `${name}.sock`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    const board = new AppBoard(path.join(path.dirname(dir), 'boards'), name, this.spec.limits.processes, this.lanes);
    // A socket moved aside for the tenant's share by a lodged that then died.
    fs.rmSync(shutName(file), { force: true });
    let fd: number;
    try {
      // The listen queue is the app's request queue, as long as lodged's (maxQueue): a
      // unix socket's queue holds one more connection than its backlog.
      fd = listenUnix(file, Math.max(0, this.opts.maxQueue - 1), peerUid, peerGid, 0o600);
    } catch (err) {
      board.close();
      throw err;
    }
    // Requests that go straight to the app never pass acquire(): their edits are
    // looked for, and their counts read off the board, on a clock instead.
    const tick = setInterval(() => this.onTick(), ROUTE_TICK_MS);
    tick.unref();
    this.route = { path: file, fd, tick, board, shut: false };
    this.opts.listenFd = fd;
    this.opts.boardFd = board.fd;
  }

  /** Seconds a request may wait for a worker, here or in the app's listen queue. */
  get queueSeconds(): number {
    return Math.max(1, Math.ceil(this.opts.queueTimeoutMs / 1000));
  }

  /**
   * The pid of the worker that holds the request with this REQ ticket, when `socket` is
   * this app's: a VERDICT without a pid names it so (one that exited: recentTicketPid).
   */
  pidByTicket(socket: string, ticket: number): number | undefined {
    return this.route?.path === socket ? this.route.board.pidByTicket(ticket) : undefined;
  }

  /** The socket mod_lodge may connect to for this app now: a worker of it is ready. */
  routeReady(): string | undefined {
    // A worker started before the app had its socket does not accept on it.
    if (!this.route || this.retired || this.candidate || this.route.shut || this.routedReady.size === 0) return undefined;
    return this.route.path;
  }

  private closeRoute(): void {
    if (!this.route) return;
    try {
      fs.unlinkSync(this.route.shut ? shutName(this.route.path) : this.route.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    fs.closeSync(this.route.fd);
    clearInterval(this.route.tick);
    this.readBoard();
    this.route.board.close();
    this.route = undefined;
    this.boardBusy = this.socketQueue = 0;
    this.slotOf.clear();
    this.onSocket.clear();
    this.routedReady.clear();
    this.opts.listenFd = this.opts.boardFd = undefined;
  }

  private onTick(): void {
    this.checkCode();
    this.readBoard();
    this.guardDoor();
  }

  /**
   * The tenant's request share for requests that never pass lodged: while the tenant
   * holds its share (here and on its other apps), the app's socket is moved aside, so
   * that mod_lodge finds none there and asks lodged, which refuses with 503 as for any
   * request past the share (acquire). Within one tick (ROUTE_TICK_MS) of the share
   * filling, the listen queue can still take what it has room for.
   */
  private guardDoor(): void {
    const route = this.route;
    if (!route) return;
    const over = !this.opts.share.admits(this, this.opts.caps);
    if (over === route.shut) return;
    const [from, to] = over ? [route.path, shutName(route.path)] : [shutName(route.path), route.path];
    try {
      fs.renameSync(from, to);
      route.shut = over;
    } catch (err) {
      log.warn(`${this.name}: cannot move the app's socket ${from} to ${to}: ${(err as Error).message}`);
    }
  }

  // What the workers counted of the requests they took straight from Apache: into the
  // status model; any request ended or in hand keeps the app from being idle; each
  // worker's request watchdogs hear of the request it holds.
  private readBoard(): void {
    const board = this.route?.board;
    if (!board) return;
    const { deltas, seen } = board.read();
    this.countOnBoard(deltas);
    const byPid = new Map<number, SlotSeen[]>();
    let busy = 0;
    for (const s of seen) {
      if (s.busy) {
        busy++;
        this.lastUsed = Date.now();
      }
      const of = byPid.get(s.pid);
      if (of) of.push(s);
      else byPid.set(s.pid, [s]);
    }
    for (const w of this.workers) {
      const slots = byPid.get(w.pid);
      if (slots) w.boardSaw(slots);
    }
    this.boardBusy = busy;
    // The kernel's count costs a netlink round trip: asked only when one waits.
    this.socketQueue = this.route && pending(this.route.fd) ? Math.max(1, listenQueue(this.route.fd)) : 0;
    this.spawnForQueue(busy);
  }

  // Requests wait in the app's listen queue and every worker is busy (or starting):
  // one more worker, within the app's and the tenant's caps, as acquire() starts one
  // for a request lodged queues.
  private spawnForQueue(busy: number): void {
    this.socketWaiting = 0;
    const route = this.route;
    const held = this.capHeld;
    this.capHeld = false;
    // Room for one more request in a worker (a lane neither lodged's nor the socket's):
    // the connections waiting are about to be taken.
    if (!route || busy + this.inFlight() < this.liveWorkers() * this.lanes || this.socketQueue === 0) return;
    // Connections wait on the app's socket and every worker is busy.
    this.stats.queued(this.socketQueue);
    if (this.workers.size >= this.spec.limits.processes) {
      // Counted once each time the cap holds requests back, not at every read.
      if (!held) this.stats.capReached++;
      this.capHeld = true;
      return;
    }
    if (this.candidate || this.retired || this.backoff.failed !== undefined || this.starting > 0) return;
    // What the tenant's share counts as wanted, until the next read of the board.
    this.socketWaiting = 1;
    if (!this.opts.share.mayStart(this, this.opts.caps)) {
      // The tenant's other apps hold its workers: an idle one of theirs makes room.
      this.opts.share.reclaim(this);
      return;
    }
    if (!this.stillOwned()) return;
    this.spawn();
  }

  private countOnBoard(deltas: Array<Parameters<AppRecord['endedOnBoard']>[0]>): void {
    for (const d of deltas) {
      this.stats.endedOnBoard(d);
      this.served += d.ended;
      this.lastUsed = Date.now();
    }
  }

  /** Whether a bodyless request (whose peer offered to borrow) should borrow the worker. */
  lendsBodyless(): boolean {
    if (this.carriedAvg < LEND_AT_BYTES) return false;
    return ++this.bodylessSeen % MEASURE_EVERY !== 0;
  }

  /** The request's client left while it waited. */
  cancel(ex: Exchange): void {
    const i = this.queue.findIndex((q) => q.ex === ex);
    if (i >= 0) {
      clearTimeout(this.queue[i].timer);
      this.queue.splice(i, 1);
    }
  }

  /**
   * The app's configuration changed (a new pool took over): idle workers leave now,
   * busy ones after their request.
   */
  retire(): void {
    this.retired = true;
    this.closeRoute();
    for (const w of this.idle.splice(0)) w.retire();
  }

  /** Stops every worker at once (lodged is shutting down). */
  close(): void {
    this.closeRoute();
    for (const q of this.queue.splice(0)) clearTimeout(q.timer);
    for (const w of this.workers) w.kill();
  }

  /** Requests lodged handed this app's workers that are not over yet. */
  inFlight(): number {
    let n = 0;
    for (const w of this.workers) n += w.inFlight;
    return n;
  }

  /** Retires idle workers that have had nothing to do for the app's LodgeIdle. */
  reapIdle(now: number): void {
    if (this.idle.length === 0 || now - this.lastUsed < this.spec.limits.idle * 1000) return;
    // One that still holds a request (a WebSocket, say) stays on until it is done.
    const quiet = this.idle.filter((w) => w.inFlight === 0);
    if (quiet.length === 0) return;
    log.info(`${this.name}: idle for ${this.spec.limits.idle} s; stopping ${quiet.length} worker(s)`);
    for (const w of quiet) {
      this.idle.splice(this.idle.indexOf(w), 1);
      w.retire();
    }
  }

  liveWorkers(): number {
    return this.workers.size - this.starting;
  }

  /** What the status model reads of the pool now (status/model.ts). */
  statusView(): { queue: number; starting: number; reloading: boolean; generationOf(w: Worker): number } {
    const onSocket = this.route ? Math.max(0, listenQueue(this.route.fd)) : 0;
    return { queue: this.queue.length + onSocket, starting: this.starting, reloading: this.candidate !== undefined, generationOf: (w) => this.gens.get(w) ?? 0 };
  }

  // Requests the workers not yet started, or starting, will take.
  private spawnRoom(): number {
    return (Math.max(0, this.spec.limits.processes - this.counted()) + this.starting) * this.lanes;
  }

  private maybeSpawn(): void {
    // While a candidate loads, the old generation serves; more of the new code
    // starts only once it has shown that it loads.
    if (this.candidate) return;
    // Waiting here, or on the app's socket (as the board last showed it).
    const wanted = () => this.starting * this.lanes < this.queue.length + this.socketWaiting && this.counted() < this.spec.limits.processes;
    if (wanted() && !this.stillOwned()) return;
    while (wanted()) {
      if (!this.opts.share.mayStart(this, this.opts.caps)) {
        // The tenant's other apps hold its workers: an idle one of theirs makes room.
        this.opts.share.reclaim(this);
        return;
      }
      this.spawn();
    }
  }

  /**
   * The pool was made for the directory's owner at the time; an app directory that
   * changed hands, or became writable by others, since then must not start another
   * worker as the old owner. Checked before each start (not on each request: a start
   * costs far more than these few stats). The pool is retired and its waiting
   * requests told; the next request makes a pool that checks afresh.
   */
  private stillOwned(): boolean {
    let err: LodgeError | undefined;
    try {
      const now = checkOwnership(this.spec.root, this.spec.entry, this.opts.rules.minUid, this.opts.asRoot, this.opts.rules);
      if (now.uid === this.identity.uid && now.gid === this.identity.gid) return true;
      err = new RefusedError(`${this.spec.root} now belongs to uid ${now.uid} (gid ${now.gid}), not ${this.identity.uid}; the next request starts it anew`);
    } catch (e) {
      if (!(e instanceof LodgeError)) throw e;
      err = e;
    }
    log.warn(`${this.name}: not starting a worker as uid ${this.identity.uid}: ${err.message}`);
    this.retire();
    for (const q of this.queue.splice(0)) {
      clearTimeout(q.timer);
      q.ex.fail(err);
    }
    return false;
  }

  private checkCode(): void {
    if (this.candidate || this.retired) return;
    const changed = this.watch.changed();
    if (!changed) return;
    const snap = this.watch.snapshot();
    if (this.failedSnap && sameSnap(snap, this.failedSnap)) return; // that edit is known not to load
    if (this.liveWorkers() === 0 && this.starting === 0) {
      // Nothing runs the old code: the next spawn simply loads the new one.
      this.watch.adopt(snap, []);
      return;
    }
    if (!this.stillOwned()) return;
    // At the tenant's worker cap, an idle old worker leaves for the new code's first
    // one; with none idle, the reload waits for the next request that finds one.
    if (!this.opts.share.mayStart(this, this.opts.caps) && !this.giveUpIdle()) return;
    log.info(`${this.name}: ${path.relative(this.spec.root, changed)} changed; starting the new code beside the running one`);
    this.gen++;
    this.candidate = { worker: this.spawn(), snap };
  }

  private spawn(): Worker {
    this.starting++;
    const gen = this.gen;
    const snap = this.gens.size === 0 ? this.watch.snapshot() : undefined;
    watchdogs().cgroups.shareMemory(this.identity.uid, this.opts.caps.memory);
    const slot = this.route?.board.freeSlot();
    this.opts.boardSlot = slot;
    const w = new Worker(this.spec, this.identity, this.opts, {
      ready: (w, files) => {
        this.starting--;
        this.backoff.succeeded();
        this.stats.ready();
        log.info(`${this.name}: worker ${w.pid} ready (uid ${this.identity.uid}, generation ${gen})`);
        if (this.candidate?.worker === w) this.promote(files, w.startedAt);
        else if (snap) this.watch.adopt(snap, files, w.startedAt);
        if (this.onSocket.has(w) && w.acceptsOnSocket) this.routedReady.add(w);
        this.free(w);
      },
      free: (w) => {
        this.served++;
        this.free(w);
      },
      carried: (bytes) => {
        this.carriedAvg += (bytes - this.carriedAvg) / 4;
      },
      startFailed: (w, message) => {
        this.startFailed(w, message);
        // After the back-off is set: this app does not try again at once.
        this.opts.share.workerGone(this.identity.uid);
      },
      endedDirect: (status, began) => {
        this.stats.ended(status, began, false);
        this.lastUsed = Date.now();
      },
      retiring: (w) => {
        if (w.inFlight > 0) {
          this.leaving.add(w);
          // Its place is free now: a request waiting for one gets a new worker (once
          // the pool's own step that retired it is over).
          setImmediate(() => !this.retired && this.backoff.failed === undefined && this.maybeSpawn());
        }
        const slot = this.slotOf.get(w);
        if (slot !== undefined) this.route?.board.tellLeave(slot);
      },
      lastLook: () => this.readBoard(),
      exited: (w) => this.exited(w),
    });
    this.gens.set(w, gen);
    this.workers.add(w);
    if (this.route) this.onSocket.add(w);
    if (slot !== undefined && this.route) {
      this.route.board.taken(slot, w.pid);
      this.slotOf.set(w, slot);
    }
    return w;
  }

  // The candidate loaded: it becomes the code every new request runs.
  private promote(files: string[], loadedSince: number): void {
    const { snap } = this.candidate!;
    this.candidate = undefined;
    this.failedSnap = undefined;
    this.watch.adopt(snap, files, loadedSince);
    this.liveGen = this.gen;
    this.reloads++;
    this.stats.reloaded(this.gen);
    for (const old of this.idle.splice(0)) old.retire();
    log.info(`${this.name}: new code is live (generation ${this.gen})`);
    this.maybeSpawn();
  }

  private free(w: Worker): void {
    // Old code, old configuration, or (once the app has its own socket) a worker that
    // does not accept on it.
    if (this.retired || (this.gens.get(w) ?? 0) < this.liveGen || (this.route && !this.onSocket.has(w))) {
      // Old code or old configuration: it leaves; a waiting request gets a new worker.
      w.retire();
      this.maybeSpawn();
      return;
    }
    if (this.opts.share.siblingWaits(this, this.opts.caps, this.queue.length)) {
      // Another app of the tenant waits for a worker its cap keeps it from starting.
      this.leaveForSibling(w);
      return;
    }
    // A worker just ready with several lanes takes as many waiting requests.
    while (w.freeLanes() > 0) {
      const next = this.queue.shift();
      if (!next) break;
      clearTimeout(next.timer);
      w.serve(next.ex, next.frames);
    }
    if (w.freeLanes() > 0 && !this.idle.includes(w)) this.idle.push(w);
  }

  private startFailed(w: Worker, message: string): void {
    this.starting--;
    this.workers.delete(w);
    this.gens.delete(w);
    if (this.candidate?.worker === w) {
      // A broken edit: the running generation keeps serving.
      this.failedSnap = this.candidate.snap;
      this.candidate = undefined;
      this.gen--;
      log.error(`${this.name}: the changed code failed to load (${message}); the previous code keeps serving`);
      this.stats.reloadFailed(message);
      if (this.liveWorkers() > 0) return;
    }
    const failed = `${this.name} failed to start: ${message}`;
    const delay = this.backoff.fail(Date.now(), this.entryMtime(), failed);
    this.stats.startFailed(message, delay);
    tenantLog(this.identity.uid).error(`${this.name}: app failed to start (uid ${this.identity.uid}, worker ${w.pid}): ${message}; next try in ${delay / 1000} s or when the file changes`);
    if (this.liveWorkers() > 0) return; // the running workers keep serving the queue
    for (const q of this.queue.splice(0)) {
      clearTimeout(q.timer);
      q.ex.fail(new AppStartError(failed));
    }
  }

  private exited(w: Worker): void {
    this.workers.delete(w);
    const slot = this.slotOf.get(w);
    if (slot !== undefined && this.route) {
      const { deltas, held } = this.route.board.freed(slot);
      this.countOnBoard(deltas);
      for (const h of held) noteTicket(this.route.path, h.ticket, h.pid);
    }
    this.slotOf.delete(w);
    this.onSocket.delete(w);
    this.routedReady.delete(w);
    // No worker accepts on the app's socket any more: connections would wait there for
    // nobody. Without it mod_lodge asks lodged, which starts one (and any connection
    // still queued is closed before a worker said ACCEPTED: mod_lodge asks lodged too).
    if (this.workers.size === 0) this.closeRoute();
    this.gens.delete(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    this.leaving.delete(w);
    const forSibling = this.leavingForSibling.delete(w);
    if (this.backoff.failed === undefined && !forSibling) this.maybeSpawn();
    this.opts.share.workerGone(this.identity.uid, forSibling ? this : undefined);
    // A retired pool the registry no longer lists is forgotten once its last worker is gone.
    if (this.retired && this.workers.size === 0 && this.queue.length === 0) this.forget();
  }

  private expire(waiter: Waiter): void {
    const i = this.queue.indexOf(waiter);
    if (i < 0) return;
    this.queue.splice(i, 1);
    const err = new QueueFullError(`${this.name}: no worker became free within ${this.opts.queueTimeoutMs / 1000} s`);
    waiter.ex.fail(err);
  }

  // --- the tenant's share (tenant-share.ts): what it asks of this app ---

  get uid(): number {
    return this.identity.uid;
  }

  /** The tenant's caps as they apply to this app. */
  get caps(): TenantCaps {
    return this.opts.caps;
  }

  held(): number {
    // With the app's socket: the requests its workers took from it and those waiting
    // in its listen queue, as the last read of the board saw them (every share check
    // sums the tenant's apps: no system call here).
    return this.inFlight() + this.queue.length + this.boardBusy + this.socketQueue;
  }

  processes(): number {
    return this.workers.size;
  }

  staying(): number {
    return this.workers.size - this.leavingForSibling.size;
  }

  wanting(): number {
    if (this.candidate || this.backoff.failed !== undefined) return 0;
    const room = this.spec.limits.processes - this.counted();
    const unserved = this.queue.length + this.socketWaiting - this.starting * this.lanes;
    return Math.max(0, Math.min(Math.ceil(unserved / this.lanes), room));
  }

  giveUpIdle(): boolean {
    // The coldest that holds no request.
    const i = this.idle.findIndex((w) => w.inFlight === 0);
    if (i < 0) return false;
    const [w] = this.idle.splice(i, 1);
    this.leaveForSibling(w);
    return true;
  }

  private leaveForSibling(w: Worker): void {
    log.info(`${this.name}: worker ${w.pid} leaves for another app of uid ${this.identity.uid} (its share of ${this.opts.caps.processes} workers is in use)`);
    this.leavingForSibling.add(w);
    w.retire();
  }

  spawnIfWaiting(): void {
    if (this.backoff.failed === undefined) this.maybeSpawn();
  }

  /** Forgotten by the registry: the share stops counting this app. */
  forget(): void {
    this.opts.share.leave(this);
  }

  // The workers LodgeProcesses counts.
  private counted(): number {
    return this.workers.size - this.leaving.size;
  }

  /**
   * An idle worker for a request: of those with a free lane, the one holding the fewest
   * requests (a worker with several lanes runs them on one core: spreading them uses
   * the others), the warmest (the last to go idle) among equals. It stays on the idle
   * list while it has a lane free.
   */
  private takeIdle(): Worker | undefined {
    let best = -1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      // None free: leaving, or a request it was told to stop has not answered yet.
      if (this.idle[i].freeLanes() === 0) continue;
      if (best < 0 || rank(this.idle[i]) < rank(this.idle[best])) best = i;
      if (rank(this.idle[best]) === 0) break;
    }
    if (best < 0) return undefined;
    const w = this.idle[best];
    if (w.freeLanes() <= 1) this.idle.splice(best, 1);
    return w;
  }

  // 503 at once: waiting in the queue would hold one more of Apache's workers.
  private refuseForShare(ex: Exchange): void {
    const { uid, gid } = this.identity;
    const held = this.opts.share.held(uid);
    const cap = this.opts.caps.requests;
    const n = shareNotes.note(this.spec.root);
    if (n > 0) {
      const since = n > 1 ? ` (${n} refused since the last line)` : '';
      appendTenantLog(this.spec.root, this.opts.tenantLog, uid, gid,
        `request refused with 503: your apps already hold ${held} requests (running or waiting), this host's share for one account (tenant-requests ${cap})${since}`);
      log.warn(`uid ${uid} (${this.name}): ${held} requests held, its share is ${cap}; refusing with 503${since}`);
      this.stats.event('share', `${held} requests held, over the account's share of ${cap}; refused with 503${since}`);
    }
    ex.fail(new TenantShareError(`${this.name}: uid ${uid} holds ${held} requests, its share (${cap}); refused`));
  }

  private entryMtime(): number {
    return fs.statSync(path.join(this.spec.root, this.spec.entry), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  }
}

function sameSnap(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [f, m] of a) if (b.get(f) !== m) return false;
  return true;
}

/** Where guardDoor moves an app's socket while its tenant holds its share. */
function shutName(socketPath: string): string {
  return `${socketPath}.shut`;
}

/**
 * Which free worker lodged hands a request to first: the fewest requests in hand, one
 * busy with a request it took from the app's socket counting as one (lodged cannot
 * tell when that ends; the request would wait behind it).
 */
function rank(w: Worker): number {
  return w.inFlight + w.directInFlight;
}
