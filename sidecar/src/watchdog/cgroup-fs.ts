import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';

// Reading and writing the cgroup file system: mounts, lodged's own groups, the
// kernel's keyed files, and killing what a group lists. No policy here (cgroups.ts).

export interface Mount {
  version: 1 | 2;
  mountpoint: string;
  /** The part of the hierarchy that is mounted there ('/' unless in a container). */
  root: string;
  options: string[];
}

export function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function readMounts(): Mount[] {
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
export function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') own.set('', m[2]);
    else for (const c of m[1].split(',')) own.set(c, m[2]);
  }
  return own;
}

export function dirIn(mount: Mount, cgroupPath: string | undefined): string | undefined {
  if (cgroupPath === undefined) return undefined;
  if (mount.root === '/') return path.join(mount.mountpoint, cgroupPath);
  if (cgroupPath !== mount.root && !cgroupPath.startsWith(mount.root + '/')) return undefined;
  return path.join(mount.mountpoint, cgroupPath.slice(mount.root.length));
}

export function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

export function tryWrite(file: string, value: string): string | undefined {
  try {
    fs.writeFileSync(file, value);
    return undefined;
  } catch (err) {
    return errCode(err);
  }
}

export function readPids(file: string): number[] {
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
export function readKeyed(file: string, key: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

export function readNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'latin1').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export function mkdirOk(dir: string): void {
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** SIGKILL to everything listed in a group, again while new ones appear (a fork bomb's race). */
export function killListed(procsFile: string): number {
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

export function removeDir(dir: string): boolean {
  try {
    fs.rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function subdirs(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(dir, d.name));
  } catch {
    return [];
  }
}
