import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';
import { killListed, readKeyed, readNumber, readPids, removeDir, sleepSync, tryWrite } from './cgroup-fs';

export type Controller = 'memory' | 'pids' | 'cpu';

export interface Hierarchy {
  version: 1 | 2;
  /** Where lodged keeps its groups: <mount><lodged's own cgroup>/lodge. */
  base: string;
  /** The controllers lodged takes from this hierarchy. */
  controllers: Set<Controller>;
}

/** rmdir of a killed worker's group waits for its processes to be gone: this long at most. */
const REMOVE_DEADLINE_MS = 10_000;

/** What keeps the groups: told when a worker's groups are gone. */
export interface GroupOwner {
  leafGone(uid: number): void;
}

/** One of a worker's groups: its folder in one hierarchy. */
export interface Leaf {
  h: Hierarchy;
  dir: string;
}

/** One worker's groups, one per hierarchy in use. */
export class WorkerGroup {
  private removed = false;

  constructor(
    private readonly owner: GroupOwner,
    readonly uid: number,
    readonly name: string,
    private readonly leaves: Leaf[],
  ) {}

  /** The folders the worker joins (writes its pid to cgroup.procs) before tenant code runs. */
  get dirs(): string[] {
    return this.leaves.map((l) => l.dir);
  }

  private leaf(c: Controller): Leaf | undefined {
    return this.leaves.find((l) => l.h.controllers.has(c));
  }

  private get v2(): Leaf | undefined {
    return this.leaves.find((l) => l.h.version === 2);
  }

  // The list to read members from: the pids hierarchy counts them anyway.
  private get tracking(): Leaf {
    return this.leaf('pids') ?? this.v2 ?? this.leaves[0];
  }

  /** Processes (not threads) in the worker's tree, the worker itself included. */
  members(): number[] {
    return readPids(path.join(this.tracking.dir, 'cgroup.procs'));
  }

  /**
   * Kills every process of the worker's tree, wherever setsid() or a double fork took
   * it: at once by v2's cgroup.kill where there is one, then from the group's list
   * (what is left, or all of it on v1).
   */
  kill(): void {
    const v2 = this.v2;
    if (v2) tryWrite(path.join(v2.dir, 'cgroup.kill'), '1');
    killListed(path.join(this.tracking.dir, 'cgroup.procs'));
  }

  /** Processes the kernel's OOM killer stopped in this worker's group so far. */
  oomKills(): number {
    const l = this.leaf('memory');
    if (!l) return 0;
    return (l.h.version === 2 ? readKeyed(path.join(l.dir, 'memory.events'), 'oom_kill') : readKeyed(path.join(l.dir, 'memory.oom_control'), 'oom_kill')) ?? 0;
  }

  /**
   * Anonymous and shared memory of the whole tree, each page once: a forked child's
   * copy-on-write pages are not counted again, as a sum of RSS would (page cache is
   * left out: the kernel reclaims it before it stops anything).
   */
  memoryUsed(): number | undefined {
    const l = this.leaf('memory');
    if (!l) return undefined;
    const stat = path.join(l.dir, 'memory.stat');
    const [anon, shmem] = l.h.version === 2 ? ['anon', 'shmem'] : ['total_rss', 'total_shmem'];
    const a = readKeyed(stat, anon);
    return a === undefined ? undefined : a + (readKeyed(stat, shmem) ?? 0);
  }

  /**
   * The tenant's memory share (its own group's limit), when the kernel's OOM killer
   * acted because of it rather than the worker's own limit: the worker's group never
   * reached its own (v1 memory.failcnt, v2 memory.events max).
   */
  shareLimitHit(): number | undefined {
    const l = this.leaf('memory');
    if (!l) return undefined;
    const own = l.h.version === 2 ? readKeyed(path.join(l.dir, 'memory.events'), 'max') : readNumber(path.join(l.dir, 'memory.failcnt'));
    if (own === undefined || own > 0) return undefined;
    return readNumber(path.join(path.dirname(l.dir), l.h.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'));
  }

  /** The most memory the group ever used, by the kernel's count. */
  memoryPeak(): number | undefined {
    const l = this.leaf('memory');
    if (!l) return undefined;
    return readNumber(path.join(l.dir, l.h.version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes'));
  }

  /** CPU used by every process ever in the group, in seconds (v2 keeps it without a controller). */
  cpuSeconds(): number | undefined {
    const v2 = this.v2;
    if (!v2) return undefined;
    const usec = readKeyed(path.join(v2.dir, 'cpu.stat'), 'usage_usec');
    return usec === undefined ? undefined : usec / 1e6;
  }

  /**
   * Forks the tenant's task limit refused: kernels count them in the group that forked
   * (v1, recent v2 with pids_localevents) or in the one whose limit was hit; both are
   * read, and only a change matters.
   */
  forkFailures(): number {
    const l = this.leaf('pids');
    if (!l) return 0;
    const at = (dir: string) => readKeyed(path.join(dir, 'pids.events'), 'max') ?? 0;
    return at(l.dir) + at(path.dirname(l.dir));
  }

  /**
   * The worker is gone: kills what is left of its tree, and removes its groups as
   * soon as the kernel lets go of them (a killed process takes a moment to exit).
   */
  release(): void {
    if (this.removed) return;
    this.removed = true;
    this.kill();
    const deadline = Date.now() + REMOVE_DEADLINE_MS;
    let delay = 10;
    const attempt = () => {
      const left = this.leaves.filter((l) => !removeDir(l.dir));
      if (left.length === 0) return this.owner.leafGone(this.uid);
      if (Date.now() > deadline) {
        log.warn(`cgroup ${left[0].dir} still holds ${this.members().join(' ') || 'no listed process'} ${REMOVE_DEADLINE_MS / 1000} s after its worker ended; left in place`);
        return this.owner.leafGone(this.uid);
      }
      this.kill();
      setTimeout(attempt, delay).unref();
      delay = Math.min(delay * 2, 500);
    };
    attempt();
  }

  /** At lodged's exit: no timers left to wait on. */
  releaseNow(): void {
    if (this.removed) return;
    this.removed = true;
    this.kill();
    for (let i = 0; i < 50 && this.leaves.some((l) => fs.existsSync(l.dir)); i++) {
      for (const l of this.leaves) removeDir(l.dir);
      if (this.leaves.some((l) => fs.existsSync(l.dir))) sleepSync(10);
    }
  }
}
