import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Reply } from './helpers/http';
import { Site, eventually, startSite } from './helpers/site';

// The tenant's memory share is the limit of its own cgroup: two apps of one tenant,
// each well within its LodgeMemory, together go past the share, and the kernel stops
// one of them; a neighbour keeps answering.

const SHARE = 160 * 1024 * 1024;
// 100 MiB each: under LodgeMemory 128M (no watchdog of the worker's own acts), over
// the share of 160 MiB together.
const GRAB_APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
KEEP = []
def application(environ, start_response):
    if environ["PATH_INFO"] == "/grab":
        KEEP.append(b"\\1" * (100 << 20))
        open(os.path.join(TOP, "grabbed-" + os.path.basename(HERE)), "w").close()
        for _ in range(1200):
            if os.path.exists(os.path.join(TOP, "release")):
                break
            time.sleep(0.05)
        KEEP.clear()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`;
const HELLO = `
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"calm"]
`;
const APP_FILES = (dir: string) => ({ [`${dir}/.htaccess`]: 'LodgeApp wsgi app.py\nLodgeMemory 128M\nLodgeProcesses 1\n', [`${dir}/app.py`]: GRAB_APP });

let site: Site;
before(async () => {
  site = await startSite(
    { bomb: { ...APP_FILES('x'), ...APP_FILES('y') }, calm: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': HELLO } },
    { limits: { tenantMemory: '160M' } },
  );
});
after(async () => {
  if (site) fs.writeFileSync(path.join(site.root, 'bomb', 'release'), '');
  await site?.stop();
});

/** The tenant's own cgroup folders (one per hierarchy lodged uses), found by uid. */
function tenantGroups(uid: number): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name === String(uid) && path.basename(dir) === 'lodge') out.push(p);
      else if (depth < 6) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return out;
}

function memoryLimitFile(uid: number): string | undefined {
  for (const g of tenantGroups(uid)) {
    for (const f of ['memory.max', 'memory.limit_in_bytes']) if (fs.existsSync(path.join(g, f))) return path.join(g, f);
  }
  return undefined;
}

test("the tenant's cgroup holds its memory share as its limit", async (t) => {
  const r = await site.get('bomb', '/x/');
  assert.equal(r.status, 200);
  const file = memoryLimitFile(site.users.bomb.uid);
  if (!file) {
    // Not a skipped assertion: a host without a memory cgroup says so in lodged's log.
    assert.match(site.lodgedLog() + site.errorLog(), /no memory cgroup|no writable cgroup memory/);
    t.diagnostic('no memory cgroup here: the share is not enforced by the kernel');
    return;
  }
  assert.equal(fs.readFileSync(file, 'utf8').trim(), String(SHARE), file);
});

test("two apps of one tenant over its memory share together: the kernel stops one, the neighbour answers", async () => {
  const top = path.join(site.root, 'bomb');
  const settled: Reply[] = [];
  const grab = (app: string) => site.get('bomb', `/${app}/grab`, { timeoutMs: 60_000 }).then((r) => (settled.push(r), r));
  const x = grab('x');
  await eventually(() => fs.existsSync(path.join(top, 'grabbed-x')), 'the first app holds 100 MiB');
  const y = grab('y');
  // Each alone is within its LodgeMemory; together they pass the share.
  await eventually(() => settled.length >= 1, 'one of the two is stopped while both would hold their memory');
  const calm = await Promise.all(Array.from({ length: 10 }, () => site.get('calm', '/')));
  fs.writeFileSync(path.join(top, 'release'), '');
  const replies = await Promise.all([x, y]);
  const failed = replies.filter((r) => r.status !== 200);
  // Usually the kernel stops one and the other is served; when the first one's memory
  // is not yet given back as the second goes on allocating, it stops both.
  assert.ok(failed.length >= 1, `at least one is stopped: ${replies.map((r) => r.status).join(', ')}`);
  for (const f of failed) assert.ok([502, 503].includes(f.status), `${f.status} ${f.text}`);
  assert.deepEqual(calm.map((r) => r.status), Array(10).fill(200));
  const stopped = replies[0] === failed[0] ? 'x' : 'y';
  assert.match(site.tenantLog('bomb', stopped), /OOM killer stopped (it|a process of it) when all the apps of this account together reached their memory share of 160 MiB/);
  // The tenant's next request works.
  assert.equal((await site.get('bomb', '/x/')).status, 200);
  assert.equal((await site.get('bomb', '/y/')).status, 200);
});
