import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

/** A real Unix user for one test run; remove it with removeUser. */
export function createUser(prefix = 'lodget'): TestUser {
  const name = `${prefix}-${crypto.randomBytes(3).toString('hex')}`;
  execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', name], { stdio: 'pipe' });
  const [, , uid, gid] = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** Pids of the processes running as uid (read from /proc, nothing signalled). */
export function processesOf(uid: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=', '-u', String(uid)], { encoding: 'utf8' });
  return r.stdout.split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);
}

/**
 * Removes the user once its processes (the sandbox's workers) are gone. One that outlived
 * its site by 5 s is killed, and named on stderr: left running, a tenant's loop would
 * slow every test file after it (the tests that check workers end look for it themselves).
 */
export async function removeUser(user: TestUser): Promise<void> {
  for (let i = 0; i < 100 && processesOf(user.uid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  const left = processesOf(user.uid);
  if (left.length > 0) {
    process.stderr.write(`lodge test: processes of ${user.name} outlived their site, killed: ${left.join(' ')}\n`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone in the meantime
      }
    }
    for (let i = 0; i < 40 && processesOf(user.uid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  }
  const r = spawnSync('userdel', [user.name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`userdel ${user.name}: ${r.stderr.trim()}`);
}
