import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';
import { Mount, alive, dirIn, errCode, killListed, mkdirOk, ownCgroups, readMounts, removeDir, sleepSync, subdirs, tryWrite } from './cgroup-fs';
import { Controller, GroupOwner, Hierarchy, Leaf, WorkerGroup } from './worker-group';

export { Controller, Hierarchy, WorkerGroup } from './worker-group';

/**
 * The kernel's own limits, per tenant and per worker:
 *
 *   <hierarchy>/<lodged's own cgroup>/lodge/<uid>/          pids.max (tasks), cpu share,
 *                                the tenant's memory share (all its apps together)
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

export type CgroupMode = 'auto' | 'v1' | 'v2' | 'off';
const CONTROLLERS: Controller[] = ['memory', 'pids', 'cpu'];

/** Equal weights: a tenant with many busy workers gets no more CPU than one with one. */
const CPU_SHARES_V1 = 1024;
const CPU_WEIGHT_V2 = 100;

export class Cgroups implements GroupOwner {
  private seq = 0;
  private readonly live = new Map<number, Set<WorkerGroup>>();
  private warned = false;
  /** The memory each tenant's group may use, as its apps' pools last asked (bytes). */
  private readonly shareWanted = new Map<number, number>();
  /** What is written in each tenant's group now. */
  private readonly shareSet = new Map<number, number>();

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
        ensureBase(h);
        const tenant = path.join(h.base, String(uid));
        mkdirOk(tenant);
        if (h.controllers.has('pids')) fs.writeFileSync(path.join(tenant, 'pids.max'), String(opts.tasks));
        if (h.controllers.has('cpu')) {
          if (h.version === 1) fs.writeFileSync(path.join(tenant, 'cpu.shares'), String(CPU_SHARES_V1));
          else fs.writeFileSync(path.join(tenant, 'cpu.weight'), String(CPU_WEIGHT_V2));
        }
        if (h.version === 2 && h.controllers.has('memory')) fs.writeFileSync(path.join(tenant, 'cgroup.subtree_control'), '+memory');
        if (h.controllers.has('memory')) this.applyShare(h, tenant, uid);
        const dir = path.join(tenant, name);
        fs.mkdirSync(dir);
        made.push(dir);
        if (h.controllers.has('memory')) setMemory(h, dir, opts.memoryMax, { oomGroup: true });
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

  /**
   * The memory limit of the tenant's own group, over all its workers: set when its
   * next worker's groups are made (pool/pool.ts asks before each spawn).
   */
  shareMemory(uid: number, bytes: number): void {
    this.shareWanted.set(uid, bytes);
  }

  // A failure costs the tenant its share limit, not its worker: the worker's own
  // limit still holds (logged once per tenant group).
  private applyShare(h: Hierarchy, tenant: string, uid: number): void {
    const want = this.shareWanted.get(uid);
    const had = this.shareSet.get(uid);
    if (want === undefined || want === had) return;
    try {
      setMemory(h, tenant, want, { previous: had, oomGroup: false });
      this.shareSet.set(uid, want);
    } catch (err) {
      this.shareSet.set(uid, want);
      log.warn(`cannot set the memory share of uid ${uid} (${tenant}) to ${want} bytes: ${errCode(err)}; its workers keep their own limits`);
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
    this.shareSet.delete(uid);
    this.shareWanted.delete(uid);
    for (const h of this.hierarchies) removeDir(path.join(h.base, String(uid)));
  }

  /**
   * Groups left by a lodged that died before it could clean up. Its workers saw it go
   * and leave by themselves, after the request each holds (one that came straight
   * from Apache is answered so): an empty group is removed; with `kill`, so is every
   * other, its processes killed (what is left once they had their time: a worker
   * past it, what an app started). Another lodged's live groups are left alone.
   * How many were removed and killed, and how many still have processes.
   */
  sweep(kill: boolean): { groups: number; processes: number; waiting: number } {
    const stale = (leaf: string) => {
      const owner = Number(/^(\d+)-\d+$/.exec(path.basename(leaf))?.[1]);
      return owner > 0 && owner !== process.pid && !alive(owner);
    };
    let groups = 0;
    let processes = 0;
    let waiting = 0;
    for (let i = 0; i < (kill ? 100 : 1); i++) {
      let left = 0;
      for (const h of this.hierarchies) {
        for (const tenant of subdirs(h.base)) {
          for (const leaf of subdirs(tenant).filter(stale)) {
            const killed = kill ? killListed(path.join(leaf, 'cgroup.procs')) : 0;
            if (i === 0) processes += killed;
            if (removeDir(leaf)) groups++;
            else left++;
          }
          removeDir(tenant);
        }
      }
      waiting = left;
      if (left === 0) break;
      sleepSync(20);
    }
    return { groups, processes, waiting };
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

// A worker's limit sits where lodged's "far over" is: past it, the kernel's OOM
// killer acts within the worker's group at once, however fast the app allocates. A
// tenant's limit (its share) works the same over all its workers: the killer then
// picks one worker's tree of the tenant's, never another tenant's.
// Swap is kept out, or a memory bomb would swap instead of stopping.
function setMemory(h: Hierarchy, dir: string, max: number, o: { previous?: number; oomGroup: boolean }): void {
  if (h.version === 1) {
    // v1 wants memory <= memory+swap at every step: raising, memsw goes first.
    const files = [path.join(dir, 'memory.limit_in_bytes'), path.join(dir, 'memory.memsw.limit_in_bytes')].filter((f, i) => i === 0 || fs.existsSync(f));
    if (o.previous !== undefined && max > o.previous) files.reverse();
    for (const f of files) fs.writeFileSync(f, String(max));
  } else {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(max));
    const swap = path.join(dir, 'memory.swap.max');
    if (fs.existsSync(swap)) fs.writeFileSync(swap, '0');
    // The OOM killer takes the whole worker's tree, not one process of it.
    if (o.oomGroup) fs.writeFileSync(path.join(dir, 'memory.oom.group'), '1');
  }
}

/**
 * Another lodged on the machine (a second instance, a test) removes the shared
 * `lodge` folder when it exits with no group left in it: it is made again, with
 * the controllers this lodged hands down.
 */
function ensureBase(h: Hierarchy): void {
  if (fs.existsSync(h.base)) return;
  mkdirOk(h.base);
  if (h.version === 2) for (const c of h.controllers) fs.writeFileSync(path.join(h.base, 'cgroup.subtree_control'), `+${c}`);
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
