import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface Tenant {
  name: string;
  dir: string;
}

/** A tenant name must be usable as a host name label. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Every sub-folder of root whose name is a host label is a tenant. */
export function findTenants(root: string): Tenant[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && LABEL.test(d.name))
    .map((d) => ({ name: d.name, dir: path.join(root, d.name) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Gives each root-owned tenant folder a Unix user of its own (`lodge-<name>`),
 * created now and removed by the returned undo. Used by the demo, which works on a
 * copy of the examples, so changing owners there is harmless.
 */
export function makeTenantUsers(tenants: Tenant[]): () => void {
  const created: string[] = [];
  for (const t of tenants) {
    if (fs.statSync(t.dir).uid !== 0) continue;
    const user = `lodge-${t.name}`.slice(0, 32);
    try {
      execFileSync('getent', ['passwd', user], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', user], { stdio: 'pipe' });
      created.push(user);
    }
    execFileSync('chown', ['-R', `${user}:${user}`, t.dir]);
    execFileSync('chmod', ['-R', 'go-w', t.dir]);
  }
  return () => {
    for (const user of created) {
      try {
        execFileSync('userdel', [user], { stdio: 'pipe' });
      } catch (err) {
        process.stderr.write(`lodge sandbox: could not remove user ${user}: ${(err as Error).message}\n`);
      }
    }
  };
}
