import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Files, Site, eventually, startSite } from './helpers/site';
import { processesOf } from './helpers/users';

// A host with many mostly idle tenants: each app that had a request and then none
// for LodgeIdle holds no process, and lodged forgets it.
const COUNT = 200;
const APP = 'def application(e, s):\n    s("200 OK", [("Content-Type", "text/plain")])\n    return [b"ok"]\n';

let site: Site;
before(async () => {
  const tenants: Record<string, Files> = {};
  for (let i = 0; i < COUNT; i++) tenants[`t${i}`] = { '.htaccess': 'LodgeApp wsgi app.py\nLodgeIdle 1\n', 'app.py': APP };
  site = await startSite(tenants);
});
after(async () => site?.stop());

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

test(`${COUNT} tenants that went idle hold no worker process`, async (t) => {
  const lodged = site.sb.lodged.pid!;
  const before = rssKiB(lodged);
  for (let i = 0; i < COUNT; i++) {
    const r = await site.get(`t${i}`, '/');
    assert.equal(r.status, 200, `t${i}: ${r.text}`);
  }
  const busy = rssKiB(lodged);
  const uids = Object.values(site.users).map((u) => u.uid);
  await eventually(() => uids.every((uid) => processesOf(uid).length === 0), 'every worker reaped', 60_000);
  const idle = rssKiB(lodged);
  t.diagnostic(`lodged RSS: ${before} KiB at start, ${busy} KiB after a request to each of ${COUNT} apps, ${idle} KiB once all were reaped`);
  // A request still works after reaping (cold start).
  const t0 = Date.now();
  assert.equal((await site.get('t0', '/')).text, 'ok');
  t.diagnostic(`cold start of a hello app after reaping: ${Date.now() - t0} ms`);
});
