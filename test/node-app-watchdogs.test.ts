import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { clientLoop, tally } from './helpers/load';
import { processesOf } from './helpers/users';

// A Node app's event loop stuck in a handler, or a handler that eats memory, costs its
// tenant that request and that worker: lodged's watchdogs (LodgeCPU, LodgeMemory) stop
// it as they stop a WSGI worker, the app's next request gets a new worker, and a
// neighbour under steady load fails nothing. (A handler that never answers is stopped
// alone at LodgeTimeout, its worker serving on: worker-concurrency.test.ts.)

const APP = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/loop') { for (;;) {} }
  if (req.url === '/memory-bomb') { const keep = []; for (;;) keep.push(Buffer.alloc(1 << 20, 1)); }
  res.end(String(process.pid));
}).listen(process.env.PORT || 3000);
`;

const NEIGHBOUR = `
require('node:http').createServer((req, res) => res.end('neighbour')).listen(3000);
`;

forEachApache((apache) => {
  let site: Site;
  let load: ReturnType<typeof clientLoop>;
  before(async () => {
    site = await startSite(
      {
        // LodgeTimeout far above LodgeCPU: on a loaded machine the loop gets a fraction of a
        // core, and the CPU limit must still be what stops it.
        a: { '.htaccess': 'LodgeApp node server.js\nLodgeTimeout 30\nLodgeCPU 1\nLodgeMemory 128M\nLodgeProcesses 1\n', 'server.js': APP },
        b: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 2\n', 'server.js': NEIGHBOUR },
      },
      undefined,
      apache,
    );
    assert.equal((await site.get('b', '/')).text, 'neighbour');
    load = clientLoop(site, 'b', [{ name: 'b1', expect: 'neighbour' }, { name: 'b2', expect: 'neighbour', keepAlive: true }]);
  });
  after(async () => {
    await load?.stop();
    await site?.stop();
  });

  const attacks = [
    { what: 'while(true){} in a handler is a 504 at LodgeCPU', tenant: 'a', path: '/loop', status: 504, log: /GET \/loop: request used more than LodgeCPU 1 s/ },
    { what: 'a memory bomb is a 502', tenant: 'a', path: '/memory-bomb', status: 502, log: /GET \/memory-bomb: worker \d+ stopped for memory/ },
  ];
  for (const a of attacks) {
    test(`${a.what}; the worker is killed, the next request works`, async () => {
      const before = await site.get(a.tenant, '/');
      assert.equal(before.status, 200);
      const r = await site.get(a.tenant, a.path, { timeoutMs: 60_000 });
      assert.equal(r.status, a.status, r.text.slice(0, 200));
      await eventually(() => a.log.test(site.tenantLog(a.tenant)), 'the tenant log names the request and the limit').catch((err) => {
        throw new Error(`${err.message}; the log ends:\n${site.tenantLog(a.tenant).slice(-600)}`);
      });
      await eventually(() => !processesOf(site.users[a.tenant].uid).includes(Number(before.text)), 'the worker that ran it is gone');
      const next = await site.get(a.tenant, '/');
      assert.equal(next.status, 200);
      assert.notEqual(next.text, before.text, 'a new worker');
    });
  }

  test('the neighbour under steady load failed no request meanwhile', async () => {
    const outcomes = await load.stop();
    const bad = outcomes.filter((o) => o.status !== 200);
    assert.ok(outcomes.length > 20, `only ${outcomes.length} requests`);
    assert.equal(bad.length, 0, tally(outcomes));
  });
});
