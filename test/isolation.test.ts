import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Site, eventually, startSite } from './helpers/site';
import { createUser, processesOf, removeUser } from './helpers/users';

// Each tenant runs as its own Unix user and nothing more: it cannot read another's
// files, signal another's workers, or talk to lodged; and an app directory that does
// not meet the host's rules is refused with the reason, never run as the wrong user.

const PROBE_APP = `
import json, os, signal, socket
from urllib.parse import parse_qs

def attempt(fn):
    try:
        fn()
        return "allowed"
    except OSError as e:
        return type(e).__name__

def application(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    p = environ["PATH_INFO"]
    if p == "/whoami":
        out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
               "env": sorted(os.environ)}
    elif p == "/read":
        out = attempt(lambda: open(q["path"], "rb").read())
    elif p == "/list":
        out = attempt(lambda: os.listdir(q["path"]))
    elif p == "/kill":
        out = attempt(lambda: os.kill(int(q["pid"]), signal.SIGKILL))
    elif p == "/connect":
        def connect():
            s = socket.socket(socket.AF_UNIX)
            s.connect(q["path"])
            s.sendall(b"\\x01\\0\\0\\0\\0\\0\\0\\0")
            if not s.recv(1):
                raise ConnectionResetError("closed at once")
        out = attempt(connect)
    else:
        out = os.getpid()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]
`;

const PLAIN_APP = `
import os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`;

const app = (code: string) => ({ '.htaccess': 'LodgeApp wsgi app.py\nLodgeEnv GREETING hello\n', 'app.py': code });

/**
 * A folder only its owner and Apache may enter: mode 0750 with an ACL entry for
 * www-data (r-x), what a host gives each tenant's web folder. Written as the raw
 * system.posix_acl_access attribute, so the test needs no setfacl.
 */
function privateToApache(dir: string): void {
  const www = Number(execFileSync('id', ['-u', 'www-data'], { encoding: 'utf8' }).trim());
  const py = `
import os, struct, sys
U = 0xffffffff
entries = [(0x01, 7, U), (0x02, 5, ${www}), (0x04, 5, U), (0x10, 5, U), (0x20, 0, U)]
os.setxattr(sys.argv[1], "system.posix_acl_access",
            struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries))
`;
  execFileSync('/usr/bin/python3', ['-c', py, dir]);
}

let site: Site;
let bDir: string;
before(async () => {
  site = await startSite({
    a: app(PROBE_APP),
    b: { ...app(PLAIN_APP), 'static/style.css': 'body { color: teal }\n', 'secret.txt': 'B only\n' },
    rootowned: app(PLAIN_APP),
    worldwritable: app(PLAIN_APP),
    escape: app(PLAIN_APP),
  });
  bDir = path.join(site.root, 'b');
  privateToApache(bDir);
  fs.chmodSync(bDir, 0o750);
  execFileSync('chown', ['-R', 'root:root', path.join(site.root, 'rootowned')]);
  fs.chmodSync(path.join(site.root, 'worldwritable'), 0o777);
  const entry = path.join(site.root, 'escape', 'app.py');
  fs.rmSync(entry);
  fs.symlinkSync(path.join(bDir, 'app.py'), entry);
  execFileSync('chown', ['-h', `${site.users.escape.uid}:${site.users.escape.gid}`, entry]);
});
after(async () => site?.stop());

const json = async (p: string) => {
  const r = await site.get('a', p);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
};

test('a worker runs as its directory\'s owner, with that user\'s groups only and a clean environment', async () => {
  const me = await json('/whoami');
  const a = site.users.a;
  assert.equal(me.uid, a.uid);
  assert.equal(me.euid, a.uid);
  assert.equal(me.gid, a.gid);
  assert.deepEqual(me.groups, [a.gid]);
  const allowed = new Set(['PATH', 'LANG', 'HOME', 'USER', 'LOGNAME', 'GREETING', 'LC_CTYPE']);
  assert.deepEqual(me.env.filter((k: string) => !allowed.has(k)), [], 'nothing of lodged\'s or Apache\'s environment');
});

test('a tenant cannot read another tenant\'s files, while Apache still serves them', async () => {
  assert.equal(await json(`/read?path=${encodeURIComponent(path.join(bDir, 'app.py'))}`), 'PermissionError');
  assert.equal(await json(`/read?path=${encodeURIComponent(path.join(bDir, 'secret.txt'))}`), 'PermissionError');
  assert.equal(await json(`/list?path=${encodeURIComponent(bDir)}`), 'PermissionError');
  const css = await site.get('b', '/static/style.css');
  assert.equal(css.status, 200, 'Apache reads B\'s static files');
  assert.match(css.text, /teal/);
  assert.equal((await site.get('b', '/')).status, 200, 'B\'s app runs');
});

test('a tenant cannot signal another tenant\'s worker', async () => {
  const bPid = Number((await site.get('b', '/')).text);
  assert.ok(processesOf(site.users.b.uid).includes(bPid));
  assert.equal(await json(`/kill?pid=${bPid}`), 'PermissionError');
  assert.equal(Number((await site.get('b', '/')).text), bPid, 'the same worker of B still answers');
});

test('a tenant cannot connect to lodged\'s socket', async () => {
  assert.equal(await json(`/connect?path=${encodeURIComponent(site.sb.socket)}`), 'PermissionError');
  const st = fs.statSync(site.sb.socket);
  assert.equal(st.mode & 0o777, 0o660);
});

test('a user who gets past the socket\'s mode (in Apache\'s group) is still refused by SO_PEERCRED', async () => {
  const intruder = createUser();
  try {
    execFileSync('usermod', ['-a', '-G', 'www-data', intruder.name]);
    const py = `
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b"\\x01\\0\\0\\0\\0\\0\\0\\0")
    print("answered" if s.recv(1) else "closed")
except OSError as e:
    print("closed")
`;
    const r = spawnSync('setpriv', ['--reuid', intruder.name, '--regid', intruder.name, '--init-groups', '/usr/bin/python3', '-c', py, site.sb.socket], { encoding: 'utf8' });
    assert.equal(r.stdout.trim(), 'closed', r.stderr);
    await eventually(() => new RegExp(`refused a connection from pid \\d+ uid ${intruder.uid}`).test(site.lodgedLog()), 'lodged logs the refusal');
  } finally {
    await removeUser(intruder);
  }
});

test('an app directory owned by root is refused with the reason, and nothing runs', async () => {
  const r = await site.get('rootowned', '/');
  assert.equal(r.status, 500);
  await eventually(() => /rootowned is owned by root; apps never run as root/.test(site.lodgedLog()), 'the reason in lodged\'s log');
  assert.match(site.errorLog(), /rootowned is owned by root/);
  assert.match(site.lodgedLog(), /rootowned: refusal not written to a tenant log/);
});

test('a world-writable app directory is refused; the reason is in the host\'s log and in the tenant\'s', async () => {
  const r = await site.get('worldwritable', '/');
  assert.equal(r.status, 500);
  await eventually(() => /worldwritable is writable by group or others \(mode 777\)/.test(site.lodgedLog()), 'the reason in lodged\'s log');
  assert.match(site.tenantLog('worldwritable'), /\[lodged\] refused to run this app: .*writable by group or others \(mode 777\)/);
  assert.equal(processesOf(site.users.worldwritable.uid).length, 0);
  const log = fs.statSync(path.join(site.root, 'worldwritable', 'logs', 'lodge.log'));
  assert.equal(log.uid, site.users.worldwritable.uid, 'the line was written as the tenant');
});

test('an app file that leads out of its directory by a symbolic link is refused', async () => {
  const r = await site.get('escape', '/');
  assert.equal(r.status, 500);
  await eventually(() => /escape\/app\.py leads outside the app directory/.test(site.lodgedLog()), 'the reason in lodged\'s log');
  assert.equal(processesOf(site.users.escape.uid).length, 0);
});

test('a tenant log that is a symbolic link is not followed by lodged', async () => {
  const dir = path.join(site.root, 'worldwritable');
  const victim = path.join(site.root, 'victim.txt');
  fs.writeFileSync(victim, 'untouched\n');
  fs.rmSync(path.join(dir, 'logs'), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.symlinkSync(victim, path.join(dir, 'logs', 'lodge.log'));
  execFileSync('chown', ['-R', '-h', `${site.users.worldwritable.uid}:${site.users.worldwritable.gid}`, path.join(dir, 'logs')]);
  // Another request within a minute is not told twice; a changed reason is.
  fs.chmodSync(dir, 0o775);
  assert.equal((await site.get('worldwritable', '/')).status, 500);
  await eventually(() => /cannot open the tenant log logs\/lodge\.log as uid \d+: openat: .*(ELOOP|symbolic)/i.test(site.lodgedLog()), 'lodged says why it wrote nothing');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched\n');
});

test('an app directory outside the host\'s allowed roots is refused', async () => {
  const other = await startSite({ c: app(PLAIN_APP) }, { allowedRoots: ['/srv/lodge-tenants'] });
  try {
    assert.equal((await other.get('c', '/')).status, 500);
    await eventually(() => /is outside the host's allowed roots \(\/srv\/lodge-tenants\)/.test(other.lodgedLog()), 'the reason in lodged\'s log');
    assert.match(other.tenantLog('c'), /refused to run this app: .* outside the host's allowed roots/);
    assert.equal(processesOf(other.users.c.uid).length, 0);
  } finally {
    await other.stop();
  }
});
