import { AppLimits } from '../config/schema';
import { LodgeError } from '../errors';
import { log } from '../log';
import type { Cgroups, WorkerGroup } from './cgroups';
import type { Reaper } from './reaper';
import type { Sampler } from './sampler';
import { CpuLimitError, MemoryLimitError } from './errors';
import { addressSpaceCap, applyRlimits, hardMemory } from './limits';
import { Sampled, treePss, treeUsage } from './sampler';

/** A watchdog's decision: the error that answers the request, the line for the tenant. */
export interface Verdict {
  err: LodgeError;
  tenant: string;
}

/** What the guards of all workers share (index.ts's Watchdogs): the guard's view of it. */
export interface GuardShared {
  readonly cgroups: Cgroups;
  readonly sampler: Sampler;
  readonly reaper: Reaper;
  readonly workers: Set<number>;
  readonly asRoot: boolean;
  taskLimitHit(uid: number, tasks: number): void;
}

/** What a guard asks of its worker. */
export interface GuardTarget {
  /** Stop now: `err` answers the request in hand (if any), `tenant` goes to the tenant's log. */
  stop(err: LodgeError, tenant: string): void;
  readonly app: string;
}

export function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

/**
 * The watchdogs of one worker, from spawn to exit:
 *
 *   spawn ──▶ joins its cgroups (runtime), rlimits set (prlimit)
 *   request ──▶ sampled every SAMPLE_MS: memory of the tree, CPU since the request
 *               began, OOM kills in its group, forks the tenant's task limit refused
 *       memory > LodgeMemory         → recycled after the request
 *       memory > 1.5 × LodgeMemory   → stopped now (502) ┐ where a memory cgroup is,
 *       an OOM kill in its group     → stopped now (502) ┘ the kernel acts first
 *       CPU > LodgeCPU               → stopped now (504)
 *       the task limit refused forks → recycled after the request
 *   end of request ──▶ one more sample while idle, then none until the next request
 *   exit ──▶ its whole tree killed, its groups removed
 *
 * Nothing here runs per request but two flag changes and a Set insertion; /proc and
 * the cgroup files are read on the sampler's tick only.
 */
export class WorkerGuard implements Sampled {
  pid = -1;
  /** Why this worker leaves after its request, once a sample found it over a limit. */
  recycle?: string;
  readonly group?: WorkerGroup;
  private busy = false;
  private stopped = false;
  /** CPU of the tree when the request began (undefined: take it at the first sample). */
  private cpuBase?: number;
  /** CPU sampled while idle: exact for the next request's start. */
  private idleCpu?: number;
  private oomSeen = 0;
  private forksSeen = 0;
  /**
   * The most memory sampled during the current request: the memory cgroup's anonymous
   * memory of the tree where there is one, else the tree's proportional set size (a
   * forked child's shared pages counted once), or the lone worker's RSS.
   */
  private peakMemory = 0;

  constructor(
    private readonly wd: GuardShared,
    readonly uid: number,
    private readonly limits: AppLimits,
    private readonly target: GuardTarget,
  ) {
    this.group = wd.cgroups.worker(uid, { memoryMax: hardMemory(limits.memory), tasks: limits.tasks });
  }

  /** The runtime joins these groups while still root, before any tenant code runs. */
  /** The worker's cgroup directories, which lodge-spawn joins before it drops root. */
  cgroupDirs(): string[] {
    return this.group ? this.group.dirs : [];
  }

  started(pid: number): void {
    this.pid = pid;
    if (pid <= 0) return;
    this.wd.workers.add(pid);
    this.forksSeen = this.group?.forkFailures() ?? 0;
    // With a pids cgroup the tenant's limit is the cgroup's, which also says when it
    // was hit; RLIMIT_NPROC (checked first, and for the uid across the host) then stays
    // a backstop above it.
    const nproc = this.group && this.wd.cgroups.controller('pids') ? 2 * this.limits.tasks : this.limits.tasks;
    applyRlimits(pid, {
      tasks: this.wd.asRoot ? nproc : undefined,
      addressSpace: this.wd.cgroups.controller('memory') && this.group ? undefined : addressSpaceCap(this.limits.memory),
    });
  }

  /** The app is loaded: its CPU so far is the import's, not a request's. */
  ready(): void {
    this.idleCpu = this.cpuNow();
  }

  requestStarted(): void {
    this.busy = true;
    this.cpuBase = this.idleCpu;
    this.idleCpu = undefined;
    this.peakMemory = 0;
    this.wd.sampler.watch(this);
  }

  /**
   * A request ended while others are still in hand (a worker with several lanes):
   * LodgeCPU counts from here on, so that it bounds the CPU a worker spends without
   * finishing any request (a blocked event loop), not a busy worker's sum. Returns why
   * the worker must leave, if a sample said so.
   */
  requestEndedAmid(): string | undefined {
    this.cpuBase = undefined;
    return this.recycle;
  }

  /** Returns why the worker must now leave, if a sample said so. */
  requestEnded(): string | undefined {
    this.busy = false;
    return this.recycle;
  }

  /** Kills every process of the worker's tree (the worker's process group is the caller's). */
  killTree(): void {
    this.group?.kill();
  }

  /** Why the worker died, when the kernel's OOM killer did it. */
  exitCause(): Verdict | undefined {
    if (!this.group || this.stopped || this.group.oomKills() <= this.oomSeen) return undefined;
    return this.memoryError(`the kernel's OOM killer stopped it ${this.oomAt()}`);
  }

  /** The worker is gone: whatever is left of its tree dies, its groups go. */
  exited(): void {
    this.stopped = true;
    this.wd.sampler.unwatch(this);
    this.wd.workers.delete(this.pid);
    this.group?.release();
    this.wd.reaper.soon();
  }

  sample(): boolean {
    if (this.stopped || this.pid <= 0) return false;
    const members = this.group ? this.group.members() : [this.pid];
    const u = treeUsage(members);
    if (u.processes === 0) return false;
    const cpu = this.group?.cpuSeconds() ?? u.cpu;
    const used = this.group?.memoryUsed() ?? (members.length > 1 ? treePss(members) : u.rss);
    if (used > this.peakMemory) this.peakMemory = used;
    const { memory, cpu: cpuLimit, tasks } = this.limits;
    if (this.group) {
      const oom = this.group.oomKills();
      if (oom > this.oomSeen) {
        this.oomSeen = oom;
        return this.stop(this.memoryError(`the kernel's OOM killer stopped a process of it ${this.oomAt()}`));
      }
    }
    if (used > hardMemory(memory)) {
      return this.stop(this.memoryError(`it used ${mib(used)}, far over LodgeMemory ${mib(memory)}`));
    }
    if (used > memory && !this.recycle) {
      this.recycle = `it used ${mib(used)}, over LodgeMemory ${mib(memory)}`;
    }
    if (this.group) {
      const refused = this.group.forkFailures();
      if (refused > this.forksSeen) {
        this.forksSeen = refused;
        this.wd.taskLimitHit(this.uid, tasks);
        // A tree that filled the tenant's task limit goes with its worker.
        if (u.processes > 1 && !this.recycle) this.recycle = `its processes reached the task limit (${tasks})`;
      }
    }
    if (this.busy) {
      if (cpuLimit > 0) {
        if (this.cpuBase === undefined) this.cpuBase = cpu;
        else if (cpu - this.cpuBase > cpuLimit) {
          const used = (cpu - this.cpuBase).toFixed(1);
          return this.stop({
            err: new CpuLimitError(`${this.target.app}: worker ${this.pid}: request used ${used} s of CPU, over LodgeCPU ${cpuLimit} s; stopped`),
            tenant: `request used more than LodgeCPU ${cpuLimit} s of CPU time; stopped (worker ${this.pid} killed)`,
          });
        }
      }
      return true;
    }
    this.idleCpu = cpu;
    return false;
  }

  // The worker's own limit, or the tenant's share over all its apps (pool/tenant-share.ts).
  private oomAt(): string {
    const share = this.group?.shareLimitHit();
    if (share !== undefined) return `when all the apps of this account together reached their memory share of ${mib(share)}`;
    return `at ${mib(hardMemory(this.limits.memory))}`;
  }

  private memoryError(why: string): Verdict {
    const peak = Math.max(this.group?.memoryPeak() ?? 0, this.peakMemory);
    const limit = mib(this.limits.memory);
    return {
      err: new MemoryLimitError(`${this.target.app}: worker ${this.pid} stopped for memory: ${why} (LodgeMemory ${limit}, peak ${mib(peak)})`),
      tenant: `worker ${this.pid} stopped for memory: ${why} (LodgeMemory ${limit})`,
    };
  }

  private stop(v: Verdict): false {
    this.stopped = true;
    log.warn(v.err.message);
    this.target.stop(v.err, v.tenant);
    return false;
  }

  private cpuNow(): number | undefined {
    if (this.pid <= 0) return undefined;
    return this.group?.cpuSeconds() ?? treeUsage(this.group ? this.group.members() : [this.pid]).cpu;
  }
}
