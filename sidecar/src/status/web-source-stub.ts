import { Registry } from '../pool/registry';
import { Pool } from '../pool/pool';
import { AppStatus, STATUS_VERSION, killReason, StatusSnapshot, StatusSource, TenantStatus, WorkerStatus } from './schema';

/**
 * STUB (h-web): a StatusSource read straight off the Registry's pools, so that the
 * status location has something true to show before the status model (StatusModel)
 * lands; at the merge main.ts passes the model instead and this file goes. It knows
 * only what the pools expose: workers, their requests, the app's limits.
 */
export class RegistryStatusStub implements StatusSource {
  private readonly started = Date.now();

  constructor(private readonly registry: Registry) {}

  snapshot(filter?: { uid?: number }): StatusSnapshot {
    const byUid = new Map<number, TenantStatus>();
    for (const pool of this.current()) {
      const uid = pool.identity.uid;
      if (filter?.uid !== undefined && uid !== filter.uid) continue;
      let t = byUid.get(uid);
      if (!t) byUid.set(uid, (t = { uid, apps: [] }));
      t.apps.push(appOf(pool));
    }
    return {
      version: STATUS_VERSION,
      lodged: { pid: process.pid, version: '0.1.0', uptime: (Date.now() - this.started) / 1000, enforcement: 'not reported yet' },
      at: Date.now(),
      tenants: [...byUid.values()].sort((a, b) => a.uid - b.uid),
      events: [],
    };
  }

  /** Rolling: the pool is retired (idle workers leave now, busy ones after their request); the next request starts a new one. */
  restartApp(root: string, filter?: { uid?: number }): boolean {
    const pool = this.current().find((p) => p.spec.root === root && (filter?.uid === undefined || p.identity.uid === filter.uid));
    if (!pool) return false;
    pool.retire();
    return true;
  }

  stopWorker(pid: number, filter?: { uid?: number }): boolean {
    for (const pool of this.current()) {
      if (filter?.uid !== undefined && pool.identity.uid !== filter.uid) continue;
      for (const w of pool.workers) {
        if (w.pid !== pid) continue;
        if (w.state === 'idle') w.retire();
        else w.kill();
        return true;
      }
    }
    return false;
  }

  /** Each live pool once (several APP frames may name the same pool). */
  private current(): Pool[] {
    return [...new Set(this.registry.pools.values())].filter((p) => !p.isRetired);
  }
}

function appOf(pool: Pool): AppStatus {
  const workers: WorkerStatus[] = [];
  let requests = 0;
  for (const w of pool.workers) {
    if (w.state === 'dead') continue;
    requests += w.requests;
    workers.push({ pid: w.pid, state: w.state, generation: 0, startedAt: w.startedAt, requests: w.requests });
  }
  const l = pool.spec.limits;
  return {
    root: pool.spec.root,
    entry: pool.spec.entry,
    kind: pool.spec.kind,
    state: workers.length ? 'running' : 'idle-stopped',
    generation: pool.reloads,
    limits: { timeout: l.timeout, cpu: l.cpu, memory: l.memory, processes: l.processes, idle: l.idle },
    workers,
    queue: { now: 0, peak: 0 },
    capReached: 0,
    requests: { total: pool.served, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    latency: { mean: 0, p95: 0, window: 60 },
    kills: Object.fromEntries(killReason.options.map((k) => [k, 0])) as AppStatus['kills'],
    restarts: 0,
    unstableRestarts: 0,
    memory: 0,
  };
}
