import * as fs from 'node:fs';
import { CLK_TCK, PAGE_SIZE } from '../posix';

/**
 * Memory and CPU of a worker's tree, read from /proc: what the cgroups do not say per
 * worker (RSS), and all there is where cgroups are not in force.
 */

export interface ProcStat {
  pid: number;
  ppid: number;
  /** R, S, D, Z, ... */
  state: string;
  /** Resident set, bytes. */
  rss: number;
  /** CPU of the process and of its children it has waited for, seconds. */
  cpu: number;
}

/** /proc/<pid>/stat, or undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold spaces and ')': fields count
  // from the last ')'. After it, field 3 (state) is f[0].
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return { pid, ppid: Number(f[1]), state: f[0], rss: Number(f[21]) * PAGE_SIZE, cpu: ticks / CLK_TCK };
}

export interface TreeUsage {
  /** Sum of the members' RSS (pages shared after fork count once per process). */
  rss: number;
  cpu: number;
  processes: number;
}

export function treeUsage(pids: number[]): TreeUsage {
  const u: TreeUsage = { rss: 0, cpu: 0, processes: 0 };
  for (const pid of pids) {
    const s = readStat(pid);
    if (!s || s.state === 'Z') continue;
    u.rss += s.rss;
    u.cpu += s.cpu;
    u.processes++;
  }
  return u;
}

/**
 * Proportional set size of a tree, bytes: each page shared after fork() counted once
 * in all, where a sum of RSS would count it in every process. Dearer to read than
 * RSS (the kernel walks the page tables), so only where no memory cgroup counts.
 */
export function treePss(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
      if (m) kb += Number(m[1]);
    } catch {
      // gone since it was listed: it holds no memory any more
    }
  }
  return kb * 1024;
}

/** How often busy workers are sampled: the resolution of LodgeCPU and of the RSS check. */
export const SAMPLE_MS = 500;

export interface Sampled {
  /** Samples once; false: nothing more to watch until the next request. */
  sample(): boolean;
}

/**
 * One timer for every watched worker, running only while some worker is busy (or
 * just finished a request), so an idle host is never woken up.
 */
export class Sampler {
  private readonly watched = new Set<Sampled>();
  private timer?: NodeJS.Timeout;

  watch(s: Sampled): void {
    this.watched.add(s);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), SAMPLE_MS);
      this.timer.unref();
    }
  }

  unwatch(s: Sampled): void {
    this.watched.delete(s);
  }

  private tick(): void {
    for (const s of this.watched) if (!s.sample()) this.watched.delete(s);
    if (this.watched.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
