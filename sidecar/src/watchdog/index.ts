import { currentSettings } from '../config/load';
import { log } from '../log';
import { CgroupMode, Cgroups } from './cgroups';
import { Reaper } from './reaper';
import { SAMPLE_MS, Sampler } from './sampler';
import { MEMORY_HARD_FACTOR } from './limits';

export { WorkerGuard } from './guard';

/** A tenant that keeps hitting its task limit is named in the host's log once a minute. */
const TASK_NOTE_EVERY_MS = 60_000;

/**
 * How long the workers of a lodged that died may take to leave by themselves: the
 * runtime gives the request a worker holds then LEAVE_GRACE (30 s, process.py), from
 * the moment it saw lodged go, which was before this lodged started; and a second.
 */
const ORPHAN_GRACE_MS = 31_000;

/** What every worker's guard shares: the cgroups, the sampler, the reaper. */
export class Watchdogs {
  readonly sampler = new Sampler();
  /** Pids of live workers (libuv reaps those; the reaper leaves them alone). */
  readonly workers = new Set<number>();
  readonly reaper = new Reaper((pid) => this.workers.has(pid));
  private reaping = '';
  private readonly taskNotes = new Map<number, number>();

  constructor(readonly cgroups: Cgroups, readonly asRoot: boolean) {}

  start(): void {
    this.reaping = this.reaper.start();
  }

  /** Which enforcement is in force, in one line (lodged's start, the status page). */
  describe(): string {
    const cg = this.cgroups;
    const where = (c: 'memory' | 'pids' | 'cpu') => {
      const h = cg.controller(c);
      return h ? `cgroup v${h.version}` : undefined;
    };
    const parts: string[] = [];
    const mem = where('memory');
    parts.push(mem
      ? `memory: ${mem} limit at ${MEMORY_HARD_FACTOR}x LodgeMemory, sampled every ${SAMPLE_MS} ms to recycle over LodgeMemory`
      : `memory: sampled every ${SAMPLE_MS} ms (PSS), stopped at ${MEMORY_HARD_FACTOR}x LodgeMemory, RLIMIT_AS backstop (no memory cgroup)`);
    const pids = where('pids');
    const nproc = this.asRoot ? 'RLIMIT_NPROC' : '';
    parts.push(`tasks: ${[pids ? `${pids} pids.max` : '', nproc].filter(Boolean).join(' + ') || 'not limited (not root, no pids cgroup)'}`);
    const cpu = where('cpu');
    parts.push(`CPU share: ${cpu ? `${cpu} equal weights per tenant` : 'none (no cpu cgroup)'}`);
    parts.push(`LodgeCPU: sampled every ${SAMPLE_MS} ms`);
    const tree = cg.tracksTrees;
    parts.push(`orphans: ${tree ?? "process group only (a child that calls setsid() escapes)"}; ${this.reaping}`);
    const notes = cg.notes.length ? ` [${cg.notes.join('; ')}]` : '';
    return parts.join('; ') + notes;
  }

  /** The tenant's task limit refused forks: worth one host line a minute. */
  taskLimitHit(uid: number, tasks: number): void {
    const now = Date.now();
    if ((this.taskNotes.get(uid) ?? -Infinity) > now - TASK_NOTE_EVERY_MS) return;
    this.taskNotes.set(uid, now);
    log.warn(`uid ${uid} reached its task limit (${tasks} processes and threads): forks fail in its apps`);
  }
}

let instance: Watchdogs | undefined;

/**
 * Sets the watchdogs up once: finds the cgroups, removes what a dead lodged left,
 * makes lodged its workers' subreaper, and logs which enforcement is in force. lodged
 * calls it at start; the first worker calls it otherwise.
 */
export function initWatchdogs(mode: CgroupMode = currentSettings()?.cgroups ?? 'auto', asRoot = process.getuid!() === 0): Watchdogs {
  if (instance) return instance;
  const cgroups = Cgroups.detect(mode);
  const swept = cgroups.sweep(false);
  if (swept.groups > 0) log.info(`removed ${swept.groups} empty worker cgroup(s) left by a lodged that is gone`);
  if (swept.waiting > 0) {
    log.info(`${swept.waiting} worker cgroup(s) left by a lodged that is gone still have processes: their requests finish first`);
    setTimeout(() => {
      const late = cgroups.sweep(true);
      if (late.groups > 0) log.warn(`removed ${late.groups} worker cgroup(s) left by a lodged that is gone (${late.processes} process(es) killed ${ORPHAN_GRACE_MS / 1000} s later)`);
    }, ORPHAN_GRACE_MS).unref();
  }
  const wd = new Watchdogs(cgroups, asRoot);
  wd.start();
  process.on('exit', () => cgroups.shutdown());
  log.info(`watchdogs: ${wd.describe()}`);
  instance = wd;
  return wd;
}

export function watchdogs(): Watchdogs {
  return instance ?? initWatchdogs();
}
