import { AppStatus, STATUS_VERSION, StatusEvent, StatusSnapshot, StatusSource, TenantStatus, killReason } from '../../sidecar/src/status/schema';

/**
 * FakeStatusSource (test-only): a StatusSource with `busy` tenants that serve requests
 * (their counters grow on every snapshot) and `idle` ones that never had a worker, as
 * most of a large host's are. Actions are recorded; a restart gives the app's worker a
 * new pid, a stop removes the worker.
 */
export class FakeStatusSource implements StatusSource {
  readonly restarted: string[] = [];
  readonly stopped: number[] = [];
  private calls = 0;
  private readonly pids = new Map<string, number>();
  private readonly served = new Map<string, number>();
  private nextPid = 1000;
  events: StatusEvent[] = [{ at: Date.now(), uid: 2001, app: '/srv/t2001/app', kind: 'kill', message: 'worker 1001 stopped: over LodgeMemory' }];

  constructor(private readonly busy = 3, private readonly idle = 2) {
    for (let i = 0; i < busy; i++) this.pids.set(rootOf(2000 + i), this.nextPid++);
  }

  snapshot(): StatusSnapshot {
    const n = ++this.calls;
    const tenants: TenantStatus[] = [];
    for (let i = 0; i < this.busy + this.idle; i++) {
      const uid = 2000 + i;
      const root = rootOf(uid);
      const pid = this.pids.get(root);
      // A made-up load that varies from tick to tick, so the charts have a shape.
      if (pid) this.served.set(root, (this.served.get(root) ?? 0) + (i + 1) * (3 + ((n * 37) % 11)));
      tenants.push({ uid, name: `tenant${i}`, apps: [appStatus(root, pid, pid ? this.served.get(root)! : 0)] });
    }
    return {
      version: STATUS_VERSION,
      lodged: { pid: process.pid, version: '0.1.0-test', uptime: n, enforcement: 'cgroup v2 (fake)' },
      at: Date.now(),
      tenants,
      events: this.events,
    };
  }

  restartApp(root: string): boolean {
    if (!this.pids.has(root)) return false;
    this.restarted.push(root);
    this.pids.set(root, this.nextPid++);
    return true;
  }

  stopWorker(pid: number): boolean {
    for (const [root, p] of this.pids) {
      if (p !== pid) continue;
      this.stopped.push(pid);
      this.pids.delete(root);
      return true;
    }
    return false;
  }

  /** The worker pid of an app, as the last snapshot showed it. */
  pidOf(root: string): number | undefined {
    return this.pids.get(root);
  }
}

export function rootOf(uid: number): string {
  return `/srv/t${uid}/app`;
}

function appStatus(root: string, pid: number | undefined, served: number): AppStatus {
  return {
    root,
    entry: 'app.py',
    kind: 'wsgi',
    state: pid ? 'running' : 'idle-stopped',
    generation: 1,
    limits: { timeout: 30, cpu: 30, memory: 256 << 20, processes: 4, idle: 300 },
    workers: pid
      ? [{ pid, state: 'busy', generation: 1, startedAt: Date.now() - 60_000, requests: served, current: { method: 'GET', path: '/slow', elapsed: 0.25 }, rss: (40 << 20) + served * 1024, pss: 30 << 20, cpu: served / 100 }]
      : [],
    queue: { now: pid ? 1 : 0, peak: pid ? 3 : 0 },
    capReached: 0,
    requests: { total: served, '2xx': served, '3xx': 0, '4xx': 0, '5xx': 0 },
    latency: { mean: 0.012, p95: 0.04, window: 60 },
    kills: Object.fromEntries(killReason.options.map((k) => [k, 0])) as AppStatus['kills'],
    restarts: 0,
    unstableRestarts: 0,
    memory: pid ? (40 << 20) + served * 1024 : 0,
  };
}
