/**
 * Each tenant's share of the host, across all its apps: requests held (in flight on a
 * worker, or waiting for one) and worker processes. A tenant is a uid; each of its
 * apps (pools) is a member that the share asks for its counts, so the share keeps no
 * counter of its own that could drift from what the pools hold.
 *
 *   request ──▶ admits(member)?  no ──▶ 503 + Retry-After at once
 *                                yes ──▶ the pool serves or queues it
 *   spawn   ──▶ mayStart(member)? no ──▶ reclaim(member): an idle worker of a sibling
 *                                        app leaves; its exit (workerGone) lets the
 *                                        app with the fewest workers start one
 *   a worker finishes ──▶ siblingWaits? yes ──▶ it leaves (nothing of its own waits,
 *                                        or its app has more than its fair part)
 *
 * Pure bookkeeping: no timers, no processes; tests drive it with fakes.
 */

/** What the share asks of one app's pool (Pool; FakeMember in the tests). */
export interface ShareMember {
  readonly uid: number;
  /** Requests a worker of this app serves now, plus those waiting for one. */
  held(): number;
  /** Worker processes of this app, starting and leaving ones included. */
  processes(): number;
  /** Those of them not leaving for another app of the tenant. */
  staying(): number;
  /** Waiting requests no worker of this app is starting for. */
  wanting(): number;
  /** Lets one idle worker go (it exits soon); false when none is idle. */
  giveUpIdle(): boolean;
  /** A worker of the tenant left: start one for the waiting requests, if the share allows. */
  spawnIfWaiting(): void;
}

/** One tenant's caps, as they apply to the app a request is for. */
export interface TenantCaps {
  requests: number;
  processes: number;
  /** Bytes, for the tenant's memory cgroup. */
  memory: number;
}

interface Tenant {
  members: Set<ShareMember>;
  /** Workers asked to leave for a sibling app, not yet gone. */
  reclaiming: number;
}

export class TenantShare {
  private readonly tenants = new Map<number, Tenant>();

  join(m: ShareMember): void {
    let t = this.tenants.get(m.uid);
    if (!t) this.tenants.set(m.uid, (t = { members: new Set(), reclaiming: 0 }));
    t.members.add(m);
  }

  /** The pool is forgotten (no process, no request left). */
  leave(m: ShareMember): void {
    const t = this.tenants.get(m.uid);
    if (!t) return;
    t.members.delete(m);
    if (t.members.size === 0) this.tenants.delete(m.uid);
  }

  /** Requests the tenant holds now, over all its apps. */
  held(uid: number): number {
    return this.sum(uid, (m) => m.held());
  }

  processes(uid: number): number {
    return this.sum(uid, (m) => m.processes());
  }

  /** May the tenant hold one more request? */
  admits(m: ShareMember, caps: TenantCaps): boolean {
    return this.held(m.uid) < caps.requests;
  }

  /** May one more worker of the tenant start? */
  mayStart(m: ShareMember, caps: TenantCaps): boolean {
    return this.processes(m.uid) < caps.processes;
  }

  /**
   * `m` has waiting requests and the tenant is at its worker cap: one idle worker of
   * a sibling app leaves, unless enough are leaving already for what waits.
   */
  reclaim(m: ShareMember): boolean {
    const t = this.tenants.get(m.uid);
    if (!t || t.reclaiming >= this.wanting(t)) return false;
    for (const other of t.members) {
      if (other !== m && other.giveUpIdle()) {
        t.reclaiming++;
        return true;
      }
    }
    return false;
  }

  /**
   * A worker of `m` just finished: true when it should leave so that a sibling app,
   * waiting for a worker the cap keeps it from starting, gets its place (counted as a
   * reclaim). With nothing of its own waiting (`ownWaiting` 0) it would only idle, so
   * it leaves for any waiting sibling. With requests of its own waiting, it leaves only
   * while it has more than its fair part of the tenant's workers (the cap over the
   * apps that hold requests) and a sibling has less: one busy app must not keep the
   * tenant's other apps waiting until their queue timeout.
   */
  siblingWaits(m: ShareMember, caps: TenantCaps, ownWaiting: number): boolean {
    const t = this.tenants.get(m.uid);
    if (!t || this.processes(m.uid) < caps.processes) return false;
    const fair = this.fairPart(t, caps);
    if (ownWaiting > 0 && m.staying() <= fair) return false;
    let wanted = 0;
    for (const o of t.members) {
      if (o === m) continue;
      wanted += ownWaiting > 0 ? Math.min(o.wanting(), Math.max(0, fair - o.staying())) : o.wanting();
    }
    if (t.reclaiming >= wanted) return false;
    t.reclaiming++;
    return true;
  }

  /**
   * A worker of the tenant exited (or failed to start): a waiting app may start one,
   * the one with the fewest workers first. `gaveWay`: the app whose worker left for
   * the others, which does not take the place back (it would start one for its own
   * queue, and leave again, for ever).
   */
  workerGone(uid: number, gaveWay?: ShareMember): void {
    const t = this.tenants.get(uid);
    if (!t) return;
    if (t.reclaiming > 0) t.reclaiming--;
    const waiting = [...t.members].filter((m) => m !== gaveWay && m.wanting() > 0);
    waiting.sort((a, b) => a.staying() - b.staying());
    for (const m of waiting) m.spawnIfWaiting();
  }

  // Each app's part when the apps that hold requests share the tenant's workers evenly.
  private fairPart(t: Tenant, caps: TenantCaps): number {
    let busy = 0;
    for (const o of t.members) if (o.held() > 0) busy++;
    return Math.max(1, Math.floor(caps.processes / Math.max(1, busy)));
  }

  private wanting(t: Tenant): number {
    let n = 0;
    for (const m of t.members) n += m.wanting();
    return n;
  }

  private sum(uid: number, f: (m: ShareMember) => number): number {
    const t = this.tenants.get(uid);
    if (!t) return 0;
    let n = 0;
    for (const m of t.members) n += f(m);
    return n;
  }
}

/** lodged.json's `limits` for tenants (undefined: derived, see tenantCaps). */
export interface ShareSettings {
  tenantRequests?: number;
  tenantProcesses?: number;
  tenantMemory?: number;
  /** The fraction of Apache's workers, and of the machine's memory, one tenant may take. */
  tenantShare: number;
}

/** What the APP frame said (mod_lodge: Apache's worker count and `LodgeLimit tenant-*`). */
export interface ShareAsked {
  requests?: number;
  processes?: number;
  memory?: number;
  apacheWorkers?: number;
}

/** Held requests per tenant when Apache's worker count is not known. */
export const FALLBACK_TENANT_REQUESTS = 32;
/** No tenant holds fewer: one slow request must not make a tenant's next one fail. */
export const MIN_TENANT_REQUESTS = 2;
/** Workers per tenant by default: the most one app may have, so a lone app is never cut. */
export const DEFAULT_TENANT_PROCESSES = 16;
/** Below this a tenant's cgroup would stop its first worker's import. */
export const MIN_TENANT_MEMORY = 64 * 1024 * 1024;
const PAGE = 4096;

/**
 * One tenant's caps for an app. lodged's own (lodged.json, else derived: a share of
 * Apache's workers, of the machine's memory) are the ceiling; Apache's `LodgeLimit
 * tenant-*` can only lower them, as with every other cap (an APP frame never raises
 * one).
 */
export function tenantCaps(host: ShareSettings, asked: ShareAsked, totalMemory: number): TenantCaps {
  const lower = (cap: number, v?: number) => (v !== undefined && v > 0 && v < cap ? v : cap);
  const derivedRequests = asked.apacheWorkers
    ? Math.max(MIN_TENANT_REQUESTS, Math.floor(asked.apacheWorkers * host.tenantShare))
    : FALLBACK_TENANT_REQUESTS;
  const derivedMemory = Math.max(MIN_TENANT_MEMORY, Math.floor(totalMemory * host.tenantShare));
  const memory = lower(host.tenantMemory ?? derivedMemory, asked.memory);
  return {
    requests: lower(host.tenantRequests ?? derivedRequests, asked.requests),
    processes: lower(host.tenantProcesses ?? DEFAULT_TENANT_PROCESSES, asked.processes),
    // Whole pages: what the kernel keeps, so the limit file reads back as set.
    memory: Math.floor(memory / PAGE) * PAGE,
  };
}

/**
 * At most one line per `everyMs` per key (an app), however many refusals come: a
 * flood must not become a flood of log lines. `note` returns how many were passed
 * over since the last line (plus this one), or 0 when this one is to be passed over.
 */
export class NoteGate {
  private readonly last = new Map<string, { at: number; skipped: number }>();

  constructor(private readonly everyMs: number, private readonly now: () => number = Date.now) {}

  note(key: string): number {
    const t = this.now();
    const e = this.last.get(key);
    if (e && t - e.at < this.everyMs) {
      e.skipped++;
      return 0;
    }
    const n = (e?.skipped ?? 0) + 1;
    this.last.set(key, { at: t, skipped: 0 });
    if (this.last.size > 10_000) this.prune(t);
    return n;
  }

  // Keys of apps long quiet are dropped, so the map does not grow with every app ever refused.
  private prune(t: number): void {
    for (const [k, e] of this.last) if (t - e.at >= this.everyMs) this.last.delete(k);
  }
}
