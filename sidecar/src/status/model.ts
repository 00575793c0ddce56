import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AppLimits } from '../config/schema';
import { decodePairs } from '../protocol/frames';
import { APPS_MAX, AppBook, appBook } from './app-book';
import type { AppRecord } from './app-record';
import type { EventRing } from './events';
import { LatencySummary, PROMETHEUS_BUCKETS } from './latency';
import { ProcUsage } from './proc-usage';
import {
  AppStatus,
  KillReason,
  STATUS_VERSION,
  StatusEvent,
  StatusSnapshot,
  StatusSource,
  TenantStatus,
  WorkerStatus,
  killReason,
} from './schema';
import { UserNames } from './user-names';

/** What the model reads of a worker (pool/worker.ts). */
export interface WorkerLike {
  readonly pid: number;
  readonly state: 'starting' | 'idle' | 'busy' | 'dead';
  readonly startedAt: number;
  readonly requests: number;
  readonly servedAt: number;
  /** `direct`: a request the worker took straight from Apache, as its scoreboard slot shows it. */
  statusView(): { req?: Buffer; lent: boolean; stopping: boolean; inFlight?: number; direct?: { method: string; path: string; since: number } };
  kill(reason?: KillReason): void;
}

/** What the model reads of a pool (pool/pool.ts). */
export interface PoolLike {
  readonly spec: { root: string; limits: AppLimits };
  readonly identity: { uid: number };
  readonly workers: Set<WorkerLike>;
  readonly isRetired: boolean;
  readonly stats: AppRecord;
  statusView(): { queue: number; starting: number; reloading: boolean; generationOf(w: WorkerLike): number };
  retire(): void;
}

/** The pools the model reads (pool/registry.ts). */
export interface RegistryLike {
  readonly pools: Map<string, PoolLike>;
}

export interface StatusModelOptions {
  /** Which enforcement is in force (watchdog/index.ts describe()). */
  enforcement: () => string;
  version?: string;
  /** The app records and, with them, the event ring (lodged's own by default). */
  book?: AppBook;
  users?: UserNames;
}

/** A request's path is shown up to this many characters. */
const PATH_MAX = 200;

/**
 * The status of every tenant and app, made on demand from the registry's pools and
 * the app records their hooks keep (status/app-record.ts): nothing is computed per
 * request but counters, /proc is read only here, and an app whose pool was reaped
 * still shows, idle-stopped, from its record. A uid filter (a tenant's own view)
 * keeps only that uid's apps and the events of those apps.
 */
export class StatusModel implements StatusSource {
  private readonly book: AppBook;
  private readonly events: EventRing;
  private readonly users: UserNames;
  private readonly usage = new ProcUsage();
  readonly version: string;

  constructor(private readonly registry: RegistryLike, private readonly opts: StatusModelOptions) {
    this.book = opts.book ?? appBook;
    this.events = this.book.events;
    this.users = opts.users ?? new UserNames();
    this.version = opts.version ?? packageVersion();
  }

  snapshot(filter: { uid?: number } = {}): StatusSnapshot {
    const now = Date.now();
    const uid = filter.uid;
    const pools = this.poolsByRoot(uid);
    const records = new Map<string, AppRecord>();
    for (const rec of this.book.values()) if (uid === undefined || rec.uid === uid) records.set(rec.root, rec);
    // A live pool whose record the book let go (10,000 apps opened since) still shows.
    for (const [root, list] of pools) if (!records.has(root)) records.set(root, list[0].stats);
    const tenants = new Map<number, TenantStatus>();
    for (const rec of records.values()) {
      const app = this.appStatus(rec, pools.get(rec.root) ?? [], now);
      if (!app) continue;
      let t = tenants.get(rec.uid);
      if (!t) {
        t = { uid: rec.uid, name: this.users.name(rec.uid), apps: [] };
        tenants.set(rec.uid, t);
      }
      t.apps.push(app);
    }
    this.usage.sweep(now - 10_000);
    const list = [...tenants.values()].sort((a, b) => a.uid - b.uid);
    for (const t of list) t.apps.sort((a, b) => (a.root < b.root ? -1 : a.root > b.root ? 1 : 0));
    const keep = uid === undefined ? undefined : (e: StatusEvent) => e.uid === uid && e.app !== undefined && records.has(e.app);
    return {
      version: STATUS_VERSION,
      lodged: {
        pid: process.pid,
        version: this.version,
        uptime: process.uptime(),
        enforcement: this.opts.enforcement(),
        ...(uid === undefined ? { rss: process.memoryUsage.rss(), apps: { known: this.book.size, max: this.book.max } } : {}),
      },
      at: now,
      buckets: PROMETHEUS_BUCKETS,
      tenants: list,
      events: this.events.list(keep),
    };
  }

  /**
   * A rolling restart: the app's pool is retired, so its idle workers leave now and
   * busy ones after their request, while the next request opens a new pool.
   */
  restartApp(root: string, filter: { uid?: number } = {}): boolean {
    const rec = this.book.get(root);
    const pools = this.poolsByRoot(filter.uid).get(root) ?? [];
    if (!pools.length && (!rec || (filter.uid !== undefined && rec.uid !== filter.uid))) return false;
    for (const p of pools) if (!p.isRetired) p.retire();
    (rec ?? pools[0].stats).event('reload', `restarted by ${filter.uid === undefined ? 'the host' : `uid ${filter.uid}`}: new workers take the next requests`);
    return true;
  }

  /**
   * Forgets an app's errors: its last start failure and refusal, and its events (the
   * tenant's dashboard's "clear errors"). The counters stay: they are totals, and the
   * host's metrics read them. False when no such app (of that uid).
   */
  clearErrors(root: string, filter: { uid?: number } = {}): boolean {
    const rec = this.book.get(root) ?? this.poolsByRoot(filter.uid).get(root)?.[0]?.stats;
    if (!rec || (filter.uid !== undefined && rec.uid !== filter.uid)) return false;
    rec.failure = undefined;
    rec.refusal = undefined;
    this.events.drop((e) => e.app === root && e.uid === rec.uid);
    return true;
  }

  /** Stops one worker now (its request in hand fails with 502): the pool replaces it on demand. */
  stopWorker(pid: number, filter: { uid?: number } = {}): boolean {
    for (const list of this.poolsByRoot(filter.uid).values()) {
      for (const p of list) {
        for (const w of p.workers) {
          if (w.pid !== pid || w.state === 'dead') continue;
          w.kill('admin');
          return true;
        }
      }
    }
    return false;
  }

  /** New events as they happen (the page's live list); returns the unsubscribe. */
  subscribe(fn: (e: StatusEvent) => void): () => void {
    return this.events.subscribe(fn);
  }

  // The registry's pools by app directory, the current one first; a retired pool
  // still draining its workers is listed after it.
  private poolsByRoot(uid: number | undefined): Map<string, PoolLike[]> {
    const out = new Map<string, PoolLike[]>();
    for (const p of new Set(this.registry.pools.values())) {
      if (uid !== undefined && p.identity.uid !== uid) continue;
      const list = out.get(p.spec.root);
      if (!list) out.set(p.spec.root, [p]);
      else if (p.isRetired) list.push(p);
      else list.unshift(p);
    }
    return out;
  }

  private appStatus(rec: AppRecord, pools: PoolLike[], now: number): AppStatus | undefined {
    const limits = rec.limits ?? pools[0]?.spec.limits;
    if (!limits) return undefined;
    const workers: WorkerStatus[] = [];
    let queue = 0;
    let starting = 0;
    let reloading = false;
    let memory = 0;
    for (const p of pools) {
      const view = p.statusView();
      queue += view.queue;
      if (!p.isRetired) {
        starting += view.starting;
        reloading ||= view.reloading;
      }
      for (const w of p.workers) {
        const ws = this.workerStatus(w, view.generationOf(w), p.isRetired, now);
        memory += ws.rss ?? 0;
        workers.push(ws);
      }
    }
    const live = pools.some((p) => !p.isRetired);
    const running = workers.filter((w) => w.state !== 'starting' && w.state !== 'stopping').length;
    const state: AppStatus['state'] =
      rec.refusal && !live ? 'refused'
        : reloading ? 'reloading'
          : running > 0 ? 'running'
            : starting > 0 ? 'starting'
              : rec.failure ? 'crashed'
                : 'idle-stopped';
    const kills = {} as Record<KillReason, number>;
    for (const r of killReason.options) kills[r] = rec.kills?.[r] ?? 0;
    const histogram = rec.latency.histogram();
    const reason = rec.refusal?.message ?? rec.failure?.message;
    return {
      root: rec.root,
      entry: rec.entry,
      kind: rec.kind,
      state,
      ...(reason !== undefined ? { reason } : {}),
      generation: rec.generation,
      ...(rec.lastReload ? { lastReload: rec.lastReload } : {}),
      limits: { timeout: limits.timeout, cpu: limits.cpu, memory: limits.memory, processes: limits.processes, idle: limits.idle },
      workers,
      queue: { now: queue, peak: Math.max(rec.queuePeak, queue) },
      capReached: rec.capReached,
      requests: { total: rec.total, '2xx': rec.c2xx, '3xx': rec.c3xx, '4xx': rec.c4xx, '5xx': rec.c5xx, unseen: rec.unseen },
      turnedAway: rec.turnedAway,
      latency: roundedLatency(rec.latency.summary(now)),
      ...(histogram ? { histogram: { ...histogram, sum: micro(histogram.sum) } } : {}),
      ...(rec.lastRequest ? { lastRequest: rec.lastRequest } : {}),
      kills,
      restarts: rec.restarts,
      unstableRestarts: rec.unstableRestarts,
      memory,
    };
  }

  private workerStatus(w: WorkerLike, generation: number, retired: boolean, now: number): WorkerStatus {
    const view = w.statusView();
    const state: WorkerStatus['state'] =
      view.stopping || w.state === 'dead' ? 'stopping'
        : w.state === 'busy' || view.direct ? (view.lent ? 'lent' : 'busy')
          : w.state === 'idle' && retired ? 'stopping'
            : w.state;
    const out: WorkerStatus = { pid: w.pid, state, generation, startedAt: w.startedAt, requests: w.requests };
    if ((view.inFlight ?? 0) > 1) out.inFlight = view.inFlight;
    if (view.req) {
      const line = requestLine(view.req);
      out.current = { ...line, elapsed: Math.max(0, (now - w.servedAt) / 1000) };
    } else if (view.direct) {
      const p = view.direct.path;
      out.current = { method: view.direct.method.slice(0, 16), path: p.length > PATH_MAX ? `${p.slice(0, PATH_MAX - 1)}…` : p, elapsed: Math.max(0, (now - view.direct.since) / 1000) };
    }
    if (w.pid > 0) {
      const u = this.usage.of(w.pid, now);
      if (u.rss !== undefined) out.rss = u.rss;
      if (u.pss !== undefined) out.pss = u.pss;
      if (u.cpu !== undefined) out.cpu = u.cpu;
    }
    return out;
  }
}

/** Method and path of a REQ frame (the path clipped: a query string may be long). */
export function requestLine(req: Buffer): { method: string; path: string } {
  let method = '?';
  let p = '?';
  try {
    for (const [k, v] of decodePairs(req, 8)) {
      if (k === 'REQUEST_METHOD') method = v.slice(0, 16);
      else if (k === 'REQUEST_URI') p = Buffer.from(v, 'latin1').toString('utf8');
    }
  } catch {
    // a REQ lodged cannot read is the worker's to refuse; the status shows '?'
  }
  return { method, path: p.length > PATH_MAX ? `${p.slice(0, PATH_MAX - 1)}…` : p };
}

/** Seconds to the microsecond: what a duration means here, in fewer bytes of JSON. */
function micro(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}

function roundedLatency(l: LatencySummary): LatencySummary {
  return { ...l, mean: micro(l.mean), p95: micro(l.p95) };
}

let version: string | undefined;

/** Lodge's version, from package.json (dist/sidecar/src/status/ -> the package root). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = String(JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8')).version);
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

export { APPS_MAX };
