import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { processesOf } from './helpers/users';
import { statusJson } from './helpers/status-json';

// A Node or ASGI worker holds several requests at once (LodgeConcurrency, its lanes):
// with one worker process, a quick request is answered while a slow one is in hand,
// by the same process. A request past LodgeTimeout is stopped alone and the worker
// goes on; a blocked event loop is killed. LodgeConcurrency 1 is one at a time.
//
// `/slow` writes `started` in the app's folder, then answers once the test writes
// `release` there: no timing decides the order, only the test's files.

const NODE_APP = `
const fs = require('node:fs');
require('node:http').createServer((req, res) => {
  if (req.url === '/slow') {
    fs.writeFileSync('started', '');
    const t = setInterval(() => { if (fs.existsSync('release')) { clearInterval(t); res.end('slow ' + process.pid); } }, 20);
    return;
  }
  if (req.url === '/hang') return;
  if (req.url === '/loop') { for (;;) {} }
  res.end('quick ' + process.pid);
}).listen(process.env.PORT || 3000);
`;

const ASGI_APP = `
import asyncio, os

async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            m = await receive()
            if m['type'] == 'lifespan.startup':
                await send({'type': 'lifespan.startup.complete'})
            else:
                await send({'type': 'lifespan.shutdown.complete'})
                return
    path = scope['path']
    word = 'quick'
    if path == '/slow':
        open('started', 'w').close()
        while not os.path.exists('release'):
            await asyncio.sleep(0.02)
        word = 'slow'
    elif path == '/hang':
        await asyncio.sleep(3600)
    elif path == '/loop':
        while True:
            pass
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': f'{word} {os.getpid()}'.encode()})
`;

const KINDS = [
  { kind: 'node', line: 'LodgeApp node server.js', file: 'server.js', code: NODE_APP },
  { kind: 'asgi', line: 'LodgeApp asgi main.py', file: 'main.py', code: ASGI_APP },
];

const tenant = (k: (typeof KINDS)[number], extra: string) => ({ '.htaccess': `${k.line}\nLodgeProcesses 1\n${extra}`, [k.file]: k.code });

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    const tenants: Record<string, Record<string, string>> = {};
    for (const k of KINDS) {
      tenants[`${k.kind}-many`] = tenant(k, 'LodgeConcurrency 4\n');
      tenants[`${k.kind}-one`] = tenant(k, 'LodgeConcurrency 1\n');
      tenants[`${k.kind}-timeout`] = tenant(k, 'LodgeConcurrency 4\nLodgeTimeout 2\n');
    }
    site = await startSite(tenants, undefined, apache);
  });
  after(async () => {
    await site?.stop();
  });

  const dir = (t: string) => path.join(site.root, t);
  // The app's own user writes `started`; `release` is the test's, readable by all.
  const startSlow = async (t: string) => {
    fs.rmSync(path.join(dir(t), 'started'), { force: true });
    fs.rmSync(path.join(dir(t), 'release'), { force: true });
    let settled = false;
    const slow = site.get(t, '/slow', { timeoutMs: 30_000 }).finally(() => (settled = true));
    await eventually(() => fs.existsSync(path.join(dir(t), 'started')), `${t}: the slow request reached the app`, 20_000);
    return { slow, settled: () => settled, release: () => fs.writeFileSync(path.join(dir(t), 'release'), '') };
  };

  for (const k of KINDS) {
    test(`${k.kind}: with one worker process, a quick request is answered while a slow one is in hand, by the same process`, async () => {
      const t = `${k.kind}-many`;
      const s = await startSlow(t);
      const quick = await site.get(t, '/', { timeoutMs: 20_000 });
      assert.equal(quick.status, 200, quick.text.slice(0, 300));
      assert.equal(s.settled(), false, 'the slow request is still in hand');
      // A second slow one beside it: the status shows the worker holding both.
      const second = site.get(t, '/slow', { timeoutMs: 30_000 });
      await eventually(() => {
        const app = statusJson(site).tenants.flatMap((x) => x.apps).find((a) => a.root === dir(t));
        return app?.workers.length === 1 && app.workers[0].inFlight === 2 && app.workers[0].current?.path === '/slow';
      }, 'the status shows one worker with two requests in hand');
      s.release();
      const slow = await s.slow;
      assert.equal(slow.status, 200, slow.text.slice(0, 300));
      assert.equal((await second).status, 200);
      assert.equal(slow.text.split(' ')[1], quick.text.split(' ')[1], 'one process answered both');
    });

    test(`${k.kind}: LodgeConcurrency 1 holds one request at a time`, async () => {
      const t = `${k.kind}-one`;
      const s = await startSlow(t);
      let quickDone = false;
      const quick = site.get(t, '/', { timeoutMs: 20_000 }).finally(() => (quickDone = true));
      // The quick request waits for the only lane; once released, both are answered.
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(quickDone, false, 'the quick request waited for the slow one');
      s.release();
      assert.equal((await s.slow).status, 200);
      assert.equal((await quick).status, 200);
    });

    test(`${k.kind}: a request past LodgeTimeout is a 504 and stopped alone; the same worker serves on`, async () => {
      const t = `${k.kind}-timeout`;
      const first = await site.get(t, '/');
      assert.equal(first.status, 200);
      const pid = first.text.split(' ')[1];
      const hung = site.get(t, '/hang', { timeoutMs: 30_000 });
      const meanwhile = await site.get(t, '/');
      assert.equal(meanwhile.status, 200, 'another request while one hangs');
      assert.equal((await hung).status, 504);
      await eventually(() => /GET \/hang: took longer than LodgeTimeout 2 s; stopped$/m.test(site.tenantLog(t)), 'the tenant log names the stopped request');
      const next = await site.get(t, '/');
      assert.equal(next.status, 200);
      assert.equal(next.text.split(' ')[1], pid, 'the worker was not killed');
    });

    // Which worker is killed, and when, is lodged's alone: once, on Apache 2.4.
    if (apache === '2.4') test(`${k.kind}: a blocked event loop is a 504 at LodgeTimeout, and its worker is killed`, async () => {
      const t = `${k.kind}-timeout`;
      const first = await site.get(t, '/');
      const pid = Number(first.text.split(' ')[1]);
      const r = await site.get(t, '/loop', { timeoutMs: 30_000 });
      assert.equal(r.status, 504);
      await eventually(() => /its event loop was blocked \(GET \/loop ran past LodgeTimeout 2 s/.test(site.tenantLog(t)), 'the tenant log says why the worker was killed', 20_000);
      await eventually(() => !processesOf(site.users[t].uid).includes(pid), 'the blocked worker is gone', 20_000);
      const next = await site.get(t, '/', { timeoutMs: 30_000 });
      assert.equal(next.status, 200);
      assert.notEqual(Number(next.text.split(' ')[1]), pid, 'a new worker');
    });
  }
});
