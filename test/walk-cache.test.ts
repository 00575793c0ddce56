import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { apacheCallsDuring, callsOn } from './helpers/strace';

// LodgeWalkCache (lodge_walk.c, Apache 2.4): the directory walk's lstat()s of the
// directories only root can change are remembered for a second, those of the tenants'
// folders never. Seen from outside with strace on Apache's children: which paths they
// lstat() while requests are served. And a tenant's directory swapped for a symlink to a
// neighbour's is refused at once, as Apache refuses it without the cache.

const HELLO = `
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [environ['PATH_INFO'].encode()]
`;

const tenants = {
  one: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': HELLO, 'sub/keep.txt': 'a folder of the tenant\'s own\n' },
  two: { 'theirs.txt': 'the neighbour\'s\n' },
};

/** The paths Apache's children lstat() while `work` runs, one line per call. */
async function lstatsDuring(site: Site, work: () => Promise<void>): Promise<string[]> {
  return (await apacheCallsDuring(site, 'newfstatat,lstat', work)).filter((l) => l.includes('AT_SYMLINK_NOFOLLOW'));
}

const count = callsOn;

// One after another on one kept-alive connection, as a browser's: Apache's event MPM gives
// each to an idle thread, the one idle last first, so they mostly meet the same few.
async function requests(site: Site, n: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < n; i++) {
      const r = await site.get('one', `/x${i}`, { agent });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, `/x${i}`);
    }
  } finally {
    agent.destroy();
  }
}

describe('LodgeWalkCache on (the default), Apache 2.4', () => {
  let site: Site;
  before(async () => {
    site = await startSite(tenants);
  });
  after(async () => site?.stop());

  test('the host\'s directories are lstat()ed once a second per thread, the tenant\'s folder every request', async () => {
    await requests(site, 3);
    const lines = await lstatsDuring(site, () => requests(site, 40));
    const tenant = path.join(site.root, 'one');
    assert.ok(count(lines, tenant) >= 40, `the tenant's folder, every time: ${count(lines, tenant)}`);
    // The site's root is root's, in /tmp (root's, sticky): each Apache thread asks once.
    assert.ok(count(lines, site.root) <= 8, `the host's folder, from memory: ${count(lines, site.root)} lstat()s for 40 requests`);
  });

  test('a tenant\'s folder swapped for its symlink to a neighbour\'s is refused at once (SymLinksIfOwnerMatch)', async () => {
    const sub = path.join(site.root, 'one', 'sub');
    assert.equal((await site.get('one', '/sub/page')).status, 200);
    assert.equal((await site.get('one', '/sub/page')).text, '/sub/page');
    fs.renameSync(sub, `${sub}.old`);
    fs.symlinkSync(path.join(site.root, 'two'), sub);
    const one = site.users.one;
    fs.lchownSync(sub, one.uid, one.gid);
    for (let i = 0; i < 5; i++) {
      const r = await site.get('one', '/sub/page');
      assert.equal(r.status, 403, `request ${i} after the swap: ${r.status} ${r.text.slice(0, 80)}`);
    }
    await eventually(() => site.errorLog().includes('Symbolic link not allowed'), 'Apache says why');
  });
});

describe('LodgeWalkCache off, Apache 2.4', () => {
  let site: Site;
  before(async () => {
    site = await startSite(tenants, {}, '2.4', { hostDirectives: ['LodgeWalkCache off'] });
  });
  after(async () => site?.stop());

  test('every request lstat()s every directory on the way, the host\'s too', async () => {
    await requests(site, 3);
    const lines = await lstatsDuring(site, () => requests(site, 40));
    assert.ok(count(lines, site.root) >= 40, `the host's folder, every time: ${count(lines, site.root)}`);
    assert.ok(count(lines, path.join(site.root, 'one')) >= 40);
  });
});

test('apachectl -t takes LodgeWalkCache in the server config and refuses it in a <Directory>', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-walk-conf-'));
  try {
    const mod = path.resolve(__dirname, '..', '..', 'build', 'apache24', 'mod_lodge.so');
    const conf = (extra: string) => {
      const f = path.join(dir, 'httpd.conf');
      fs.writeFileSync(f, [
        `ServerRoot "${dir}"`, `PidFile "${dir}/httpd.pid"`, `ErrorLog "${dir}/error.log"`, 'Listen 127.0.0.1:1',
        'LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so',
        'LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so',
        `LoadModule lodge_module "${mod}"`, 'LodgeDaemon off', extra, '',
      ].join('\n'));
      return f;
    };
    execFileSync('/usr/sbin/apache2', ['-t', '-f', conf('LodgeWalkCache off')], { stdio: 'pipe' });
    let said = '';
    try {
      execFileSync('/usr/sbin/apache2', ['-t', '-f', conf(`<Directory "${dir}">\nLodgeWalkCache off\n</Directory>`)], { stdio: 'pipe' });
    } catch (err) {
      said = String((err as { stderr: Buffer }).stderr);
    }
    assert.match(said, /LodgeWalkCache not allowed in <Directory> context/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
