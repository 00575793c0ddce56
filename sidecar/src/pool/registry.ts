import * as os from 'node:os';
import * as path from 'node:path';
import { Settings } from '../config/load';
import { ShuttingDownError } from '../errors';
import { tenantLog } from '../log';
import { parseAppSpec } from './app-spec';
import { declarationKey, declaredSpec, readDeclaration } from './declared-app';
import { DashboardOwner, dashboardOwner } from './dashboard-owner';
import { checkOwnership } from './ownership';
import type { Worker } from './worker';
import type { DashboardApp } from '../protocol/schemas';
import { Pool } from './pool';
import { recentTicketPid } from './recent-exits';
import { ShareAsked, TenantShare, tenantCaps } from './tenant-share';

/**
 * Pools by the raw bytes of mod_lodge's APP frame: a request for a known app costs one
 * map lookup, no parsing. A changed `.htaccess` makes different bytes, hence a new
 * pool; the old one goes idle and is reaped.
 */
/** Idle reaping runs this often; a pass over pools with no workers costs next to nothing. */
const REAP_INTERVAL_MS = 1000;
/**
 * `afterReaping` (lodged: a full collection, heap-trim.ts) runs on the first pass that
 * forgets nothing after passes that forgot pools, at most this often: a wave of idle
 * apps reaped costs one collection, a steady trickle one per interval...
 */
const TRIM_INTERVAL_MS = 10_000;
/**
 * ...and only while no request is in hand and none came for this long: the collection
 * holds lodged for tens of ms, which a request arriving then would wait out.
 */
const TRIM_QUIET_MS = 2000;

export class Registry {
  readonly pools = new Map<string, Pool>();
  /** The same pools by the app as its own file declares it (declared-app.ts). */
  private readonly byDeclaration = new Map<string, Pool>();
  /** The current pool of each app directory, to retire it when its settings change. */
  private readonly byRoot = new Map<string, Pool>();
  private readonly reaper: NodeJS.Timeout;
  /** Each tenant's share of requests and workers, over all its apps. */
  readonly share = new TenantShare();
  /** Set on SIGTERM: requests in flight finish, new ones are turned away. */
  stopping = false;

  /** Pools forgotten since afterReaping last ran, and when it did. */
  private forgotten = 0;
  private lastTrim = 0;

  constructor(
    private readonly settings: Settings,
    private readonly asRoot: boolean,
    private readonly afterReaping?: () => void,
  ) {
    this.reaper = setInterval(() => this.reap(), REAP_INTERVAL_MS);
    this.reaper.unref();
  }

  /** Where the apps' own listening sockets go (beside lodged's), when apps get one. */
  get routeDir(): string | undefined {
    return this.settings.direct ? path.join(path.dirname(this.settings.socket), 'apps') : undefined;
  }

  /** A worker of one of the apps, by its pid (a VERDICT names it). */
  workerByPid(pid: number): Worker | undefined {
    for (const pool of new Set(this.pools.values())) for (const w of pool.workers) if (w.pid === pid) return w;
    return undefined;
  }

  /**
   * The pid of the worker that took the request with this REQ ticket from the app
   * socket `socket` (a VERDICT that came without a pid): on the app's board, or among
   * the workers that exited holding it lately.
   */
  pidByTicket(socket: string, ticket: number): number | undefined {
    for (const pool of new Set(this.pools.values())) {
      const pid = pool.pidByTicket(socket, ticket);
      if (pid !== undefined) return pid;
    }
    return recentTicketPid(socket, ticket);
  }

  /** The tenant whose dashboard an APP kind=dashboard opens; throws RefusedError. */
  dashboardOwner(app: DashboardApp): DashboardOwner {
    const s = this.settings;
    return dashboardOwner(app, { minUid: s.minUid, allowedRoots: s.allowedRoots, tenantLog: s.tenantLog, apacheUser: s.apacheUser }, this.asRoot);
  }

  /** Throws LodgeError (refused, malformed) for an app that may not run. */
  poolFor(appFrame: Buffer): Pool {
    if (this.stopping) throw new ShuttingDownError('lodged is shutting down');
    const key = appFrame.toString('latin1', 8);
    const known = this.pools.get(key);
    if (known && !known.isRetired) return known;
    // A retired pool serves nobody: its workers leave as they finish. A request with
    // its settings again (the .htaccess changed back) starts the app anew.
    if (known) this.pools.delete(key);
    const asked = parseAppSpec(appFrame, this.settings);
    const s = this.settings;
    const rules = { minUid: s.minUid, allowedRoots: s.allowedRoots, tenantLog: s.tenantLog, apacheUser: s.apacheUser };
    const identity = checkOwnership(asked.root, asked.entry, s.minUid, this.asRoot, rules);
    const { spec, differs } = declaredSpec(asked, readDeclaration(asked.root, asked.config, identity.uid), s.defaults);
    if (spec.entry !== asked.entry) checkOwnership(spec.root, spec.entry, s.minUid, this.asRoot, rules);
    const declKey = declarationKey(spec);
    const same = this.byDeclaration.get(declKey);
    if (same && !same.isRetired) {
      // A sub-folder's own Lodge lines, or a frame forged by the web server's user:
      // the app runs as its file says, in the pool it already has.
      if (differs.length) tenantLog(identity.uid).debug(`${spec.config}: a request's ${differs.join(', ')} differ from the file's; serving ${same.name} as declared`);
      this.pools.set(key, same);
      return same;
    }
    if (differs.includes('app')) tenantLog(identity.uid).warn(`${spec.config}: an APP frame named ${asked.entry}, the file declares ${spec.entry}; running what the file declares`);
    const pool = new Pool(spec, identity, {
      python: this.settings.python,
      node: this.settings.node,
      tenantLog: this.settings.tenantLog,
      asRoot: this.asRoot,
      maxQueue: this.settings.maxQueue,
      queueTimeoutMs: this.settings.queueTimeout * 1000,
      rules,
      share: this.share,
      caps: tenantCaps(this.settings.share, this.lowestApacheWorkers(spec.share), os.totalmem()),
    });
    const before = this.byRoot.get(spec.root);
    if (before) {
      tenantLog(identity.uid).info(`${spec.config} changed: ${pool.name} restarts with the new settings`);
      before.retire();
    } else {
      tenantLog(identity.uid).info(`new app ${pool.name} (uid ${identity.uid}, up to ${spec.limits.processes} workers, timeout ${spec.limits.timeout} s)`);
    }
    this.byRoot.set(spec.root, pool);
    this.byDeclaration.set(declKey, pool);
    this.pools.set(key, pool);
    return pool;
  }

  /**
   * Apache's worker count as the fewest any APP frame has said since lodged started:
   * any process of the web server's user can send APP frames, and a larger count would
   * raise the share derived from it. After a graceful restart that lowers
   * MaxRequestWorkers the new count is taken; one that raises it waits for lodged's restart.
   */
  private apacheWorkers?: number;

  private lowestApacheWorkers(share: ShareAsked): ShareAsked {
    const said = share.apacheWorkers;
    if (said !== undefined) this.apacheWorkers = Math.min(this.apacheWorkers ?? said, said);
    return { ...share, apacheWorkers: this.apacheWorkers };
  }

  /** Requests lodged handed a worker that are not over yet, over all apps. */
  inFlight(): number {
    let n = 0;
    for (const pool of this.pools.values()) n += pool.inFlight();
    return n;
  }

  close(): void {
    clearInterval(this.reaper);
    for (const pool of this.pools.values()) pool.close();
  }

  private reap(): void {
    const now = Date.now();
    const before = this.forgotten;
    let lastAsked = 0;
    let busy = 0;
    for (const [key, pool] of this.pools) {
      pool.reapIdle(now);
      lastAsked = Math.max(lastAsked, pool.lastUsed);
      busy += pool.inFlight();
      // A pool with no process and no recent request is forgotten: its memory
      // would otherwise grow with every tenant that ever had a request.
      if (pool.workers.size === 0 && (pool.isRetired || now - pool.lastUsed > pool.spec.limits.idle * 1000)) {
        this.pools.delete(key);
        this.forgotten++;
        pool.forget();
        if (this.byRoot.get(pool.spec.root) === pool) this.byRoot.delete(pool.spec.root);
        const declKey = declarationKey(pool.spec);
        if (this.byDeclaration.get(declKey) === pool) this.byDeclaration.delete(declKey);
      }
    }
    if (this.forgotten > before || this.forgotten === 0 || now - this.lastTrim < TRIM_INTERVAL_MS) return;
    if (busy > 0 || now - lastAsked < TRIM_QUIET_MS) return;
    this.forgotten = 0;
    this.lastTrim = now;
    this.afterReaping?.();
  }
}
