import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';

/**
 * The kernel's own limits, per tenant and per worker:
 *
 *   <hierarchy>/<lodged's own cgroup>/lodge/<uid>/          pids.max (tasks), cpu share
 *   <hierarchy>/<lodged's own cgroup>/lodge/<uid>/<lodged pid>-<n>/
 *                                one worker and everything it starts: memory limit, and
 *                                the list of its processes to kill
 *
 * Each controller comes from cgroup v2 when the kernel offers it there, else from its
 * v1 hierarchy (memory, pids, cpu). A v2 hierarchy with no controllers still serves: its
 * cgroup.kill stops a whole tree at once, fork bomb included. Groups are made under
 * lodged's own cgroup, so whatever accounts for lodged (systemd's service, a
 * container's limits) still accounts for its tenants.
 *
 * A worker joins its groups itself, while still privileged and before any tenant code
 * runs (the runtime's --cgroup), so nothing it starts is ever outside them.
 */

export type Controller = 'memory' | 'pids' | 'cpu';
export type CgroupMode = 'auto' | 'v1' | 'v2' | 'off';
const CONTROLLERS: Controller[] = ['memory', 'pids', 'cpu'];

/** Equal weights: a tenant with many busy workers gets no more CPU than one with one. */
const CPU_SHARES_V1 = 1024;
const CPU_WEIGHT_V2 = 100;

/** rmdir of a killed worker's group waits for its processes to be gone: this long at most. */
const REMOVE_DEADLINE_MS = 10_000;

export interface Hierarchy {
  version: 1 | 2;
  /** Where lodged keeps its groups: <mount><lodged's own cgroup>/lodge. */
  base: string;
  /** The controllers lodged takes from this hierarchy. */
  controllers: Set<Controller>;
}

interface Mount {
  version: 1 | 2;
  mountpoint: string;
  /** The part of the hierarchy that is mounted there ('/' unless in a container). */
  root: string;
  options: string[];
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function readMounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({ version: fstype === 'cgroup2' ? 2 : 1, root: unescapeMount(left[3]), mountpoint: unescapeMount(left[4]), options: superOpts.split(',') });
  }
  return out;
}

/** lodged's own cgroup in each hierarchy: v1 by controller name, v2 under ''. */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') own.set('', m[2]);
    else for (const c of m[1].split(',')) own.set(c, m[2]);
  }
  return own;
}

function dirIn(mount: Mount, cgroupPath: string | undefined): string | undefined {
  if (cgroupPath === undefined) return undefined;
  if (mount.root === '/') return path.join(mount.mountpoint, cgroupPath);
  if (cgroupPath !== mount.root && !cgroupPath.startsWith(mount.root + '/')) return undefined;
  return path.join(mount.mountpoint, cgroupPath.slice(mount.root.length));
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

function tryWrite(file: string, value: string): string | undefined {
  try {
    fs.writeFileSync(file, value);
    return undefined;
  } catch (err) {
    return errCode(err);
  }
}

function readPids(file: string): number[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return []; // the group is gone: nothing is in it
  }
  const out: number[] = [];
  for (const s of text.split('\n')) if (s) out.push(Number(s));
  return out;
}

/** `key value` lines (memory.events, pids.events, cpu.stat, memory.oom_control). */
function readKeyed(file: string, key: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function readNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'latin1').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function mkdirOk(dir: string): void {
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** SIGKILL to everything listed in a group, again while new ones appear (a fork bomb's race). */
function killListed(procsFile: string): number {
  let signalled = 0;
  for (let round = 0; round < 20; round++) {
    const pids = readPids(procsFile);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        signalled++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') log.error(`kill ${pid} (in ${procsFile}): ${errCode(err)}`);
      }
    }
  }
  return signalled;
}

interface Leaf {
  h: Hierarchy;
  dir: string;
}

/** One worker's groups, one per hierarchy in use. */
export class WorkerGroup {
  private removed = false;

  constructor(
    private readonly owner: Cgroups,
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

function removeDir(dir: string): boolean {
  try {
    fs.rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class Cgroups {
  private seq = 0;
  private readonly live = new Map<number, Set<WorkerGroup>>();
  private warned = false;

  private constructor(
    readonly hierarchies: Hierarchy[],
    /** Why a controller is not in force, for the start line. */
    readonly notes: string[],
  ) {}

  /** No cgroups at all: rlimits, process groups and sampling do the work. */
  static none(note: string): Cgroups {
    return new Cgroups([], [note]);
  }

  /** Finds the hierarchies this kernel mounts and this lodged may write to. */
  static detect(mode: CgroupMode): Cgroups {
    if (mode === 'off') return Cgroups.none("cgroups: off in lodged's settings");
    let mounts: Mount[];
    let own: Map<string, string>;
    try {
      mounts = readMounts();
      own = ownCgroups();
    } catch (err) {
      return Cgroups.none(`cgroups: cannot read /proc/self/mountinfo or /proc/self/cgroup (${errCode(err)})`);
    }
    const notes: string[] = [];
    const chosen: Hierarchy[] = [];
    const wanted = new Set<Controller>(CONTROLLERS);

    const v2mount = mode !== 'v1' ? mounts.find((m) => m.version === 2) : undefined;
    if (v2mount) {
      const ownDir = dirIn(v2mount, own.get(''));
      if (!ownDir) {
        notes.push(`cgroup v2 at ${v2mount.mountpoint}: lodged's own group is not visible there`);
      } else {
        const h = setUpV2(ownDir, notes);
        if (h) {
          for (const c of h.controllers) wanted.delete(c);
          chosen.push(h);
        }
      }
    }
    if (mode !== 'v2') {
      for (const c of [...wanted]) {
        const m = mounts.find((x) => x.version === 1 && x.options.includes(c));
        if (!m) continue;
        const existing = chosen.find((h) => h.version === 1 && h.base.startsWith(m.mountpoint + '/'));
        if (existing) {
          existing.controllers.add(c);
          wanted.delete(c);
          continue;
        }
        const ownDir = dirIn(m, own.get(c));
        if (!ownDir) {
          notes.push(`cgroup v1 ${c} at ${m.mountpoint}: lodged's own group is not visible there`);
          continue;
        }
        const base = path.join(ownDir, 'lodge');
        try {
          mkdirOk(base);
        } catch (err) {
          notes.push(`cgroup v1 ${c}: cannot create ${base} (${errCode(err)})`);
          continue;
        }
        chosen.push({ version: 1, base, controllers: new Set([c]) });
        wanted.delete(c);
      }
    }
    for (const c of wanted) notes.push(`no writable cgroup ${c} controller`);
    return new Cgroups(chosen, notes);
  }

  get enabled(): boolean {
    return this.hierarchies.length > 0;
  }

  /** Where a controller comes from, or undefined when not in force. */
  controller(c: Controller): Hierarchy | undefined {
    return this.hierarchies.find((h) => h.controllers.has(c));
  }

  /** Can a worker's whole tree be found and killed (orphans included)? */
  get tracksTrees(): string | undefined {
    const v2 = this.hierarchies.find((h) => h.version === 2);
    if (v2) return `cgroup v2 cgroup.kill (${v2.base})`;
    const v1 = this.controller('pids') ?? this.hierarchies[0];
    return v1 ? `cgroup v1 ${[...v1.controllers].join(',')} (${v1.base})` : undefined;
  }

  /**
   * Makes a worker's groups: the tenant's (task limit, CPU share) if missing, then
   * the worker's own (memory). Undefined when cgroups are not in force or failed for
   * this worker, which then runs under rlimits and sampling alone (logged).
   */
  worker(uid: number, opts: { memoryMax: number; tasks: number }): WorkerGroup | undefined {
    if (!this.enabled) return undefined;
    const made: string[] = [];
    try {
      const name = this.leafName(uid);
      const leaves: Leaf[] = [];
      for (const h of this.hierarchies) {
        const tenant = path.join(h.base, String(uid));
        mkdirOk(tenant);
        if (h.controllers.has('pids')) fs.writeFileSync(path.join(tenant, 'pids.max'), String(opts.tasks));
        if (h.controllers.has('cpu')) {
          if (h.version === 1) fs.writeFileSync(path.join(tenant, 'cpu.shares'), String(CPU_SHARES_V1));
          else fs.writeFileSync(path.join(tenant, 'cpu.weight'), String(CPU_WEIGHT_V2));
        }
        if (h.version === 2 && h.controllers.has('memory')) fs.writeFileSync(path.join(tenant, 'cgroup.subtree_control'), '+memory');
        const dir = path.join(tenant, name);
        fs.mkdirSync(dir);
        made.push(dir);
        if (h.controllers.has('memory')) setMemory(h, dir, opts.memoryMax);
        leaves.push({ h, dir });
      }
      const g = new WorkerGroup(this, uid, name, leaves);
      let set = this.live.get(uid);
      if (!set) this.live.set(uid, (set = new Set()));
      set.add(g);
      return g;
    } catch (err) {
      for (const d of made.reverse()) removeDir(d);
      if (!this.warned) {
        this.warned = true;
        log.warn(`cannot set up cgroups for a worker of uid ${uid}: ${(err as Error).message}; such workers run under rlimits and sampling only`);
      }
      return undefined;
    }
  }

  // <lodged's pid>-<n>: several lodgeds may share a machine (and a tenant); each
  // sweeps only what a dead one left.
  private leafName(uid: number): string {
    for (;;) {
      const name = `${process.pid}-${++this.seq}`;
      if (this.hierarchies.every((h) => !fs.existsSync(path.join(h.base, String(uid), name)))) return name;
    }
  }

  /** A worker's groups are gone; the tenant's go too once it has no worker left. */
  leafGone(uid: number): void {
    const set = this.live.get(uid);
    if (set) for (const g of set) if (g.dirs.every((d) => !fs.existsSync(d))) set.delete(g);
    if (set && set.size > 0) return;
    this.live.delete(uid);
    for (const h of this.hierarchies) removeDir(path.join(h.base, String(uid)));
  }

  /**
   * Groups left by a lodged that died before it could clean up: their processes are
   * killed and the folders removed. Another lodged's live groups are left alone.
   */
  sweep(): { groups: number; processes: number } {
    const stale = (leaf: string) => {
      const owner = Number(/^(\d+)-\d+$/.exec(path.basename(leaf))?.[1]);
      return owner > 0 && owner !== process.pid && !alive(owner);
    };
    let groups = 0;
    let processes = 0;
    for (let i = 0; i < 100; i++) {
      let left = 0;
      for (const h of this.hierarchies) {
        for (const tenant of subdirs(h.base)) {
          for (const leaf of subdirs(tenant).filter(stale)) {
            const killed = killListed(path.join(leaf, 'cgroup.procs'));
            if (i === 0) {
              groups++;
              processes += killed;
            }
            if (!removeDir(leaf)) left++;
          }
          removeDir(tenant);
        }
      }
      if (left === 0) break;
      sleepSync(20);
    }
    return { groups, processes };
  }

  /** lodged exits: every worker's tree is killed, and lodged's folders removed. */
  shutdown(): void {
    for (const set of this.live.values()) for (const g of set) g.releaseNow();
    this.live.clear();
    for (const h of this.hierarchies) {
      for (const tenant of subdirs(h.base)) removeDir(tenant);
      removeDir(h.base);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function subdirs(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(dir, d.name));
  } catch {
    return [];
  }
}

// The kernel's limit sits where lodged's "far over" is: past it, the kernel's OOM
// killer acts within the worker's group at once, however fast the app allocates.
// Swap is kept out, or a memory bomb would swap instead of stopping.
function setMemory(h: Hierarchy, dir: string, max: number): void {
  if (h.version === 1) {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(max));
    const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
    if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(max));
  } else {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(max));
    const swap = path.join(dir, 'memory.swap.max');
    if (fs.existsSync(swap)) fs.writeFileSync(swap, '0');
    // The OOM killer takes the whole worker's tree, not one process of it.
    fs.writeFileSync(path.join(dir, 'memory.oom.group'), '1');
  }
}

/**
 * lodged's folder in the v2 hierarchy, with what controllers it can hand down. v2
 * forbids controllers in a group that has processes of its own (other than the root):
 * if lodged's group holds lodged, lodged moves into a leaf of it ("lodged") first.
 */
function setUpV2(ownDir: string, notes: string[]): Hierarchy | undefined {
  const base = path.join(ownDir, 'lodge');
  try {
    mkdirOk(base);
  } catch (err) {
    notes.push(`cgroup v2: cannot create ${base} (${errCode(err)})`);
    return undefined;
  }
  let offered: string[] = [];
  try {
    offered = fs.readFileSync(path.join(ownDir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    offered = [];
  }
  const controllers = new Set<Controller>();
  for (const c of CONTROLLERS) {
    if (!offered.includes(c)) continue;
    let why = tryWrite(path.join(ownDir, 'cgroup.subtree_control'), `+${c}`);
    if (why === 'EBUSY' && moveSelfToLeaf(ownDir)) why = tryWrite(path.join(ownDir, 'cgroup.subtree_control'), `+${c}`);
    if (why === undefined) why = tryWrite(path.join(base, 'cgroup.subtree_control'), `+${c}`);
    if (why === undefined) controllers.add(c);
    else notes.push(`cgroup v2 ${c}: cannot enable it for lodged's groups (${why})`);
  }
  // cgroup.kill came with Linux 5.14; without it a v2 group without controllers adds nothing.
  if (controllers.size === 0 && !fs.existsSync(path.join(base, 'cgroup.kill'))) {
    removeDir(base);
    notes.push('cgroup v2: no cgroup.kill and no controller to use');
    return undefined;
  }
  return { version: 2, base, controllers };
}

function moveSelfToLeaf(ownDir: string): boolean {
  const leaf = path.join(ownDir, 'lodged');
  try {
    mkdirOk(leaf);
    fs.writeFileSync(path.join(leaf, 'cgroup.procs'), String(process.pid));
    return true;
  } catch (err) {
    log.warn(`cgroup v2: cannot move lodged into ${leaf} (${errCode(err)})`);
    return false;
  }
}
