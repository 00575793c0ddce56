import { log } from '../log';
import { RLIMIT, setLimit } from '../posix';

/** "Far over" LodgeMemory: past this a worker is stopped at once, not after its request. */
export const MEMORY_HARD_FACTOR = 1.5;

export function hardMemory(memory: number): number {
  return Math.floor(memory * MEMORY_HARD_FACTOR);
}

/**
 * Address space is a blunt measure of memory (a Python thread reserves arenas and
 * stacks it never touches), so it is only the backstop where no memory cgroup is in
 * force, set well above the limit: it stops a runaway allocation that sampling would
 * see too late, and never a sane app.
 */
export function addressSpaceCap(memory: number): number {
  return Math.max(4 * memory, memory + 1024 ** 3);
}

export interface RlimitPlan {
  /** RLIMIT_NPROC: the tenant's processes and threads, counted by uid across the host. */
  tasks?: number;
  /** RLIMIT_AS, bytes: only without a memory cgroup. */
  addressSpace?: number;
}

/**
 * Sets the worker's rlimits with prlimit(2), right after spawn; its children inherit
 * them. Core dumps are off: a crashing tenant would fill its own folder with them.
 */
export function applyRlimits(pid: number, plan: RlimitPlan): void {
  const set = (name: keyof typeof RLIMIT, value: number) => {
    try {
      setLimit(pid, RLIMIT[name], value, value);
    } catch (err) {
      // ESRCH: the worker died at once; its exit says why.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') log.error(`prlimit ${name}=${value} on worker ${pid}: ${(err as Error).message}`);
    }
  };
  set('CORE', 0);
  if (plan.tasks !== undefined) set('NPROC', plan.tasks);
  if (plan.addressSpace !== undefined) set('AS', plan.addressSpace);
}
