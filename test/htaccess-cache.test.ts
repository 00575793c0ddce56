import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { apacheCallsDuring, apacheChildren, callsOn } from './helpers/strace';

// LodgeWalkCache's part in lodge_htaccess.c (Apache 2.4.7+): a .htaccess that has not
// changed for a second is stat()ed, not opened and read, on each request, and its text
// given to Apache's parser from memory; any write to it, even one that keeps its size and
// puts its mtime back, is seen on the next request. And the app's folder, lstat()ed by the
// walk on the way, is not stat()ed again for its owner.

const APP = `
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'app']
`;

// Two texts of one size: an edit between them changes no size, only the bytes.
const MARKED = (mark: string) => `LodgeApp wsgi app.py\nHeader set X-Mark ${mark}\n`;

const tenants = { one: { '.htaccess': MARKED('aaaa'), 'app.py': APP } };

async function marks(site: Site, n: number): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const seen: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const r = await site.get('one', '/x', { agent });
      assert.equal(r.status, 200, r.text);
      seen.push(String(r.headers['x-mark']));
    }
  } finally {
    agent.destroy();
  }
  return seen;
}

/** Waits until a file last written now is older than the cache's second of settling. */
const settle = () => new Promise((r) => setTimeout(r, 1300));

describe('LodgeWalkCache on (the default), Apache 2.4: .htaccess', () => {
  let site: Site;
  let file: string;
  before(async () => {
    site = await startSite(tenants);
    file = path.join(site.root, 'one', '.htaccess');
  });
  after(async () => site?.stop());

  test('a settled .htaccess is stat()ed each request, never opened, and the app folder not stat()ed again', async () => {
    await settle();
    await marks(site, 3);
    const lines = await apacheCallsDuring(site, 'openat,open,newfstatat,stat', async () => {
      assert.deepEqual(await marks(site, 30), Array(30).fill('aaaa'));
    });
    const opens = lines.filter((l) => /\bopen(at)?\(/.test(l));
    // Each Apache child reads it once for its table; the warm-up met only one of them.
    const children = apacheChildren(site.sb.apache.pid!).length;
    assert.ok(callsOn(opens, file) <= children, `opened from memory: ${callsOn(opens, file)} opens in 30 requests, ${children} children`);
    assert.ok(callsOn(lines, file) >= 30, `but stat()ed every time: ${callsOn(lines, file)}`);
    const folder = path.join(site.root, 'one');
    const stats = lines.filter((l) => l.includes(`"${folder}",`) && !l.includes('AT_SYMLINK_NOFOLLOW'));
    assert.equal(stats.length, 0, `the walk's lstat() of the app's folder gives its owner: ${stats.join('\n')}`);
  });

  test('an edit that keeps the size, even with the mtime put back, is seen on the next request', async () => {
    await settle();
    assert.deepEqual(await marks(site, 2), ['aaaa', 'aaaa']);
    const before = fs.statSync(file, { bigint: true });
    fs.writeFileSync(file, MARKED('bbbb'));
    const ns = before.mtimeNs;
    execFileSync('touch', ['-m', `--date=@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, file]);
    const now = fs.statSync(file, { bigint: true });
    assert.equal(now.size, before.size);
    assert.equal(now.ino, before.ino);
    assert.equal(now.mtimeNs, before.mtimeNs, 'the mtime put back to the nanosecond');
    assert.deepEqual(await marks(site, 2), ['bbbb', 'bbbb']);
  });

  test('edits a few milliseconds apart are each seen at once', async () => {
    for (const mark of ['cccc', 'dddd', 'eeee', 'ffff', 'gggg']) {
      fs.writeFileSync(file, MARKED(mark));
      assert.deepEqual(await marks(site, 1), [mark]);
    }
    await settle();
    assert.deepEqual(await marks(site, 2), ['gggg', 'gggg'], 'the last, once remembered');
    fs.writeFileSync(file, MARKED('hhhh'));
    assert.deepEqual(await marks(site, 1), ['hhhh']);
  });

  test('a .htaccess made unreadable is refused as Apache refuses it, and a removed one is gone', async () => {
    fs.writeFileSync(file, MARKED('iiii'));
    await settle();
    assert.deepEqual(await marks(site, 2), ['iiii', 'iiii']);
    fs.chmodSync(file, 0o000);
    try {
      const r = await site.get('one', '/x');
      assert.equal(r.status, 403, r.text);
      await eventually(() => /\.htaccess pcfg_openfile: unable to check htaccess file/.test(site.errorLog()), 'Apache says why');
    } finally {
      fs.chmodSync(file, 0o644);
    }
    assert.deepEqual(await marks(site, 1), ['iiii']);
    fs.rmSync(file);
    const r = await site.get('one', '/x');
    assert.equal(r.headers['x-mark'], undefined);
    assert.notEqual(r.text, 'app', 'no LodgeApp without the file');
  });
});

describe('LodgeWalkCache off, Apache 2.4: .htaccess', () => {
  let site: Site;
  before(async () => {
    site = await startSite(tenants, {}, '2.4', { hostDirectives: ['LodgeWalkCache off'] });
  });
  after(async () => site?.stop());

  test('the .htaccess is opened every request', async () => {
    await settle();
    await marks(site, 3);
    const file = path.join(site.root, 'one', '.htaccess');
    const lines = await apacheCallsDuring(site, 'openat,open', async () => {
      await marks(site, 20);
    });
    assert.ok(callsOn(lines, file) >= 20, `opened each time: ${callsOn(lines, file)}`);
  });
});
