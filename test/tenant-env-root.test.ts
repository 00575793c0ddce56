import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Site, startSite } from './helpers/site';
import { createUser, removeUser } from './helpers/users';

// Nothing a tenant controls reaches a process while it is root. The worker's
// interpreter is exec'd already as the tenant, with an environment of lodged's own;
// the tenant's LodgeEnv reaches the app's os.environ afterwards. A tenant that names
// its own library in LD_AUDIT (which the dynamic loader runs before main) must never
// see it run as uid 0.

const SPAWN = path.join(__dirname, '..', '..', 'build', 'Release', 'lodge-spawn');

// The tenant's library: when any process loads it, it leaves a file named for the
// effective uid it ran as.
const AUDIT_C = `
#include <stdio.h>
#include <unistd.h>
unsigned int la_version(unsigned int v) {
  char p[512];
  snprintf(p, sizeof p, "%s/euid-%d", MARKS, (int)geteuid());
  FILE *f = fopen(p, "w");
  if (f) fclose(f);
  return v;
}
`;

const APP = `
import json, os
def application(environ, start_response):
    with open("/proc/self/environ", "rb") as f:
        at_exec = [kv.split(b"=", 1)[0].decode() for kv in f.read().split(b"\\0") if kv]
    body = {"environ": dict(os.environ), "at_exec": sorted(at_exec), "euid": os.geteuid()}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
`;

let site: Site;
let marks: string;
let lib: string;

before(async () => {
  marks = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-audit-'));
  fs.chmodSync(marks, 0o1777);
  const build = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-audit-src-'));
  fs.writeFileSync(path.join(build, 'audit.c'), AUDIT_C);
  lib = path.join(build, 'audit.so');
  execFileSync('gcc', ['-shared', '-fPIC', `-DMARKS="${marks}"`, '-o', lib, path.join(build, 'audit.c')]);
  // The tenant uploads the library into its own folder (it has no compiler; the test does).
  site = await startSite({
    evil: {
      'audit.so': fs.readFileSync(lib),
      'app.py': APP,
      '.htaccess': '',
    },
  });
  const dir = path.join(site.root, 'evil');
  fs.writeFileSync(
    path.join(dir, '.htaccess'),
    [
      'LodgeApp wsgi app.py',
      `LodgeEnv LD_AUDIT ${dir}/audit.so`,
      `LodgeEnv GCONV_PATH ${dir}/gconv`,
      `LodgeEnv LOCPATH ${dir}/locale`,
      'LodgeEnv GREETING hello',
      '',
    ].join('\n'),
  );
  const u = site.users.evil;
  execFileSync('chown', [`${u.uid}:${u.gid}`, path.join(dir, '.htaccess')]);
});

after(async () => {
  await site?.stop();
  fs.rmSync(marks, { recursive: true, force: true });
  fs.rmSync(path.dirname(lib), { recursive: true, force: true });
});

test('a tenant library named in LodgeEnv LD_AUDIT never runs as root; the app still gets its LodgeEnv', async () => {
  const r = await site.get('evil', '/');
  const seen = fs.readdirSync(marks);
  assert.ok(!seen.includes('euid-0'), `the tenant's library ran as root (${seen.join(', ')})`);
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.euid, site.users.evil.uid, 'the app runs as the tenant');
  assert.equal(body.environ.GREETING, 'hello', 'LodgeEnv reaches the app');
  assert.equal(body.environ.GCONV_PATH, `${site.root}/evil/gconv`, 'a loader name the runtime does not refuse still reaches the app');
  assert.equal(body.environ.LD_AUDIT, undefined, 'LD_* names are refused for the app as well');
  // The environment the interpreter was exec'd with is lodged's alone.
  assert.deepEqual(body.at_exec, ['HOME', 'LANG', 'LOGNAME', 'PATH', 'USER']);
  assert.deepEqual(seen, [], 'no process loaded the tenant\'s library at all');
});

test('lodge-spawn refuses to exec a worker as root, and becomes the tenant with its groups before exec', async () => {
  const root = spawnSync(SPAWN, ['--uid', '0', '--gid', '0', '--', '/usr/bin/id', '-u'], { encoding: 'utf8' });
  assert.equal(root.status, 121, root.stderr);
  assert.match(root.stderr, /refusing to run a worker as root/);
  const none = spawnSync(SPAWN, ['--', '/usr/bin/id', '-u'], { encoding: 'utf8' });
  assert.equal(none.status, 121, 'as root, no --uid is refused too');

  const u = createUser('lodgesp');
  const extra = `lodgesg-${u.name.slice(-6)}`;
  try {
    execFileSync('groupadd', [extra]);
    execFileSync('usermod', ['-aG', extra, u.name]);
    const gidOfExtra = Number(execFileSync('getent', ['group', extra], { encoding: 'utf8' }).split(':')[2]);
    const r = spawnSync(SPAWN, ['--uid', String(u.uid), '--gid', String(u.gid), '--', '/bin/sh', '-c', 'id -u; id -g; id -G; echo "$HOME $USER"; env | cut -d= -f1 | sort | tr "\\n" " "'], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/root', USER: 'root' },
    });
    assert.equal(r.status, 0, r.stderr);
    const [uid, gid, groups, who, names] = r.stdout.split('\n');
    assert.equal(Number(uid), u.uid);
    assert.equal(Number(gid), u.gid);
    assert.deepEqual(groups.split(' ').map(Number).sort(), [u.gid, gidOfExtra].sort(), "the tenant's own groups, no more");
    assert.ok(!who.includes('/root') && who.endsWith(u.name), `HOME and USER are the tenant's, not lodged's: ${who}`);
    assert.doesNotMatch(names, /\bOLDPWD\b|\bSUDO/);
    const cwdBad = spawnSync(SPAWN, ['--uid', String(u.uid), '--gid', String(u.gid), '--', '/nonexistent/python'], { encoding: 'utf8' });
    assert.equal(cwdBad.status, 121);
    assert.match(cwdBad.stderr, /exec \/nonexistent\/python/);
  } finally {
    await removeUser(u);
    spawnSync('groupdel', [extra]);
  }
});
