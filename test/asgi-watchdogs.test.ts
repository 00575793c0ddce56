import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { processesOf } from './helpers/users';

// An ASGI worker runs its requests on one event loop: a coroutine that loops on the CPU
// blocks that loop. lodged's watchdogs (LodgeCPU, LodgeMemory) stop it as they stop a
// WSGI worker: the worker is killed, the request answered 504 (502 for memory), and a
// fresh worker serves the next request. (A coroutine that awaits forever is stopped
// alone at LodgeTimeout, its worker serving on: worker-concurrency.test.ts.)

const MAIN = `
import asyncio, os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    p = scope["path"]
    if p == "/loop":
        while True:   # the event loop is blocked: nothing else of the worker's runs
            pass
    if p == "/memory-bomb":
        keep = []
        while True:
            keep.append(bytearray(1 << 20))
            await asyncio.sleep(0)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        // LodgeTimeout far above LodgeCPU: on a loaded machine the loop gets a fraction of a
        // core, and the CPU limit must still be what stops it.
        cpu: { '.htaccess': 'LodgeApp asgi main.py\nLodgeTimeout 60\nLodgeCPU 1\nLodgeMemory 128M\nLodgeProcesses 1\n', 'main.py': MAIN },
      },
      undefined,
      apache,
    );
  });
  after(async () => site?.stop());

  const cases = [
    { what: 'a coroutine looping on the CPU (a blocked loop) is a 504 at LodgeCPU', tenant: 'cpu', path: '/loop', status: 504, log: /GET \/loop: request used more than LodgeCPU 1 s/ },
    { what: 'a memory bomb is a 502', tenant: 'cpu', path: '/memory-bomb', status: 502, log: /GET \/memory-bomb: worker \d+ stopped for memory/ },
  ];
  for (const c of cases) {
    test(`${c.what}; the worker is killed, the next request gets a fresh one`, async () => {
      const before = await site.get(c.tenant, '/');
      assert.equal(before.status, 200, before.text + site.tenantLog(c.tenant));
      const r = await site.get(c.tenant, c.path, { timeoutMs: 90_000 });
      assert.equal(r.status, c.status, r.text.slice(0, 200));
      await eventually(() => c.log.test(site.tenantLog(c.tenant)), 'the tenant log names the request and the limit').catch((err) => {
        throw new Error(`${err.message}; the log ends:\n${site.tenantLog(c.tenant).slice(-600)}`);
      });
      await eventually(() => !processesOf(site.users[c.tenant].uid).includes(Number(before.text)), 'the worker that ran it is gone');
      const next = await site.get(c.tenant, '/');
      assert.equal(next.status, 200);
      assert.notEqual(next.text, before.text, 'a new worker');
    });
  }
});
