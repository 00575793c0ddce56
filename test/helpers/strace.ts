import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Site } from './site';

// What Apache's children (or an app's worker) ask of the kernel while requests are
// served, seen with strace: the tests of what mod_lodge spares the directory walk
// (LodgeWalkCache), and of the worker's writes (ACCEPTED with the answer).

/** Apache's children: the processes whose parent is the sandbox's Apache. */
export function apacheChildren(parent: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent && fs.readlinkSync(`/proc/${d}/exe`).includes('apache2');
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The calls named (strace's -e trace=) that Apache's children make while `work` runs, a line each. */
export async function apacheCallsDuring(site: Site, calls: string, work: () => Promise<void>): Promise<string[]> {
  const pids = apacheChildren(site.sb.apache.pid!);
  assert.ok(pids.length > 0, 'Apache has children');
  return callsDuring(pids, calls, work);
}

/** The calls named that the processes `pids` (and their threads) make while `work` runs, a line each. */
export async function callsDuring(pids: number[], calls: string, work: () => Promise<void>): Promise<string[]> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-strace-')), 'strace.txt');
  const tracer: ChildProcess = spawn('strace', ['-f', '-qq', '-e', `trace=${calls}`, '-o', out, ...pids.flatMap((p) => ['-p', String(p)])], { stdio: 'ignore' });
  try {
    // strace is attached once it has written the first thread's line, or after a moment.
    await new Promise((r) => setTimeout(r, 500));
    await work();
  } finally {
    tracer.kill('SIGINT');
    await new Promise((r) => tracer.once('exit', r));
  }
  const lines = fs.readFileSync(out, 'utf8').split('\n');
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return lines;
}

/** How many of `lines` name the path `p` as their first argument (or the one after AT_FDCWD). */
export const callsOn = (lines: string[], p: string) => lines.filter((l) => l.includes(`"${p}",`)).length;
