import { Settings } from '../config/load';
import { log } from '../log';
import { parseAppSpec } from './app-spec';
import { checkOwnership } from './ownership';
import { Pool } from './pool';

/**
 * Pools by the raw bytes of mod_lodge's APP frame: a request for a known app costs one
 * map lookup, no parsing. A changed `.htaccess` makes different bytes, hence a new
 * pool; the old one goes idle and is reaped.
 */
export class Registry {
  readonly pools = new Map<string, Pool>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly settings: Settings, private readonly asRoot: boolean) {
    this.reaper = setInterval(() => this.reap(), 10_000);
    this.reaper.unref();
  }

  /** Throws LodgeError (refused, malformed) for an app that may not run. */
  poolFor(appFrame: Buffer): Pool {
    const key = appFrame.toString('latin1', 8);
    const known = this.pools.get(key);
    if (known) return known;
    const spec = parseAppSpec(appFrame, this.settings);
    const identity = checkOwnership(spec.root, spec.entry, this.settings.minUid, this.asRoot);
    const pool = new Pool(spec, identity, {
      python: this.settings.python,
      tenantLog: this.settings.tenantLog,
      asRoot: this.asRoot,
      maxQueue: this.settings.maxQueue,
      queueTimeoutMs: this.settings.queueTimeout * 1000,
    });
    log.info(`new app ${pool.name} (uid ${identity.uid}, up to ${spec.limits.processes} workers, timeout ${spec.limits.timeout} s)`);
    this.pools.set(key, pool);
    return pool;
  }

  close(): void {
    clearInterval(this.reaper);
    for (const pool of this.pools.values()) pool.close();
  }

  private reap(): void {
    const now = Date.now();
    for (const [key, pool] of this.pools) {
      pool.reapIdle(now);
      // A pool with no process and no recent request is forgotten: its memory
      // would otherwise grow with every tenant that ever had a request.
      if (pool.workers.size === 0 && now - pool.lastUsed > pool.spec.limits.idle * 1000) this.pools.delete(key);
    }
  }
}
