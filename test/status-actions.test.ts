import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { Site, eventually, startSite } from './helpers/site';
import { PID_APP } from './helpers/raw-frames';
import { FakeApache, FakeRequest, FakeResponse } from './helpers/fake-apache';

// The actions of the host status page on the real lodged, Apache's own: the tenant's
// app is requested through Apache; the status location's requests come from FakeApache
// on lodged's socket, as mod_lodge's status handler sends them (being built beside).

let site: Site;
before(async () => {
  site = await startSite({ a: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': PID_APP } });
});
after(async () => site?.stop());

async function status(r: FakeRequest): Promise<FakeResponse> {
  const a = await FakeApache.connect(site.sb.socket);
  try {
    return await a.request({ user: 'admin', ...r });
  } finally {
    a.close();
  }
}

async function pid(): Promise<string> {
  const r = await site.get('a', '/');
  assert.equal(r.status, 200, `${r.text}\n${site.lodgedLog()}\n${site.tenantLog('a')}\n${site.errorLog()}`);
  return r.text;
}

test('lodged\'s status location: ?json lists the app; restart by POST with the page\'s token gives it a new worker pid, a forged POST does not', async () => {
  const first = await pid();
  const snap = statusSnapshot.parse(JSON.parse((await status({ query: 'json' })).body.toString()));
  const app = snap.tenants.flatMap((t) => t.apps).find((a) => a.root === `${site.root}/a`);
  assert.ok(app, `the app is listed: ${JSON.stringify(snap.tenants)}`);
  assert.equal(snap.tenants.find((t) => t.apps.includes(app))!.uid, site.users.a.uid);
  assert.deepEqual(app.workers.map((w) => String(w.pid)), [first]);

  const page = await status({});
  const token = /<meta name="lodge-token" content="([^"]+)">/.exec(page.body.toString())![1];
  const cookie = page.header('Set-Cookie')!.split(';')[0];
  const headers = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
  const root = app.root;

  const forged = await status({ method: 'POST', path: '/restart', headers, body: new URLSearchParams({ root, token: 'forged' }).toString() });
  assert.equal(forged.status, 403);
  assert.equal(await pid(), first, 'a forged POST restarts nothing');

  const ok = await status({ method: 'POST', path: '/restart', headers, body: new URLSearchParams({ root, token }).toString() });
  assert.equal(ok.status, 200, ok.body.toString());
  const second = await pid();
  assert.notEqual(second, first, 'a new worker serves after the restart');

  const stop = await status({ method: 'POST', path: '/stop', headers, body: new URLSearchParams({ pid: second, token }).toString() });
  assert.equal(stop.status, 200, stop.body.toString());
  // The stub source (until the status model lands) stops the worker without taking it
  // out of the pool's idle list first: wait until it is gone.
  await eventually(async () => {
    const now = statusSnapshot.parse(JSON.parse((await status({ query: 'json' })).body.toString()));
    return !now.tenants.some((t) => t.apps.some((a) => a.workers.some((w) => String(w.pid) === second)));
  }, 'the stopped worker is gone');
  assert.notEqual(await pid(), second, 'a new worker serves after the stop');
});
