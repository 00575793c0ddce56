import { readStat, treePss } from '../watchdog/sampler';

/** A reading is reused for this long: several viewers (page, CLI --watch) cost one read. */
const FRESH_MS = 1000;

export interface Usage {
  rss?: number;
  pss?: number;
  cpu?: number;
}

/**
 * RSS, PSS and CPU of a worker, read from /proc only when a snapshot asks (never per
 * request): /proc/<pid>/stat for RSS and CPU, /proc/<pid>/smaps_rollup for PSS, which
 * the kernel computes by walking the page tables, hence the cache. smaps_rollup is
 * readable by root and by the process's own user: lodged as root reads every
 * worker's; PSS is absent where it cannot be read.
 */
export class ProcUsage {
  private readonly seen = new Map<number, Usage & { at: number }>();

  of(pid: number, now: number): Usage {
    const hit = this.seen.get(pid);
    if (hit && now - hit.at < FRESH_MS) return hit;
    const st = readStat(pid);
    const u = { at: now, rss: st?.rss, cpu: st?.cpu, pss: st ? pssOf(pid) : undefined };
    this.seen.set(pid, u);
    return u;
  }

  /** Forgets readings of pids not asked for since `before`. */
  sweep(before: number): void {
    for (const [pid, u] of this.seen) if (u.at < before) this.seen.delete(pid);
  }
}

function pssOf(pid: number): number | undefined {
  const bytes = treePss([pid]);
  return bytes > 0 ? bytes : undefined;
}
