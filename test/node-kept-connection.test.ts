import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// A Node worker takes request after request on a connection mod_lodge keeps to the app's
// socket (ROUTE `keep`; runtime-node/app-socket.ts, lodge_route.c): what a request no
// longer pays is a connect and an accept. A kept connection whose worker went, or whose
// worker has no lane free, costs the request nothing: mod_lodge sends it again on a new one.

const APP = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/slow') return setTimeout(() => res.end(String(process.pid)), 1500);
  res.end(String(process.pid));
}).listen(3000);
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        one: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 1\n', 'server.js': APP },
        busy: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 2\nLodgeConcurrency 1\n', 'server.js': APP },
      },
      {},
      apache,
    );
  });
  after(async () => site?.stop());

  // Connections the kernel shows established to the app's socket on the worker's side
  // (their local address is the socket's path, and the worker holds them).
  const connectionsOf = (worker: string): number => {
    const dir = path.join(path.dirname(site.sb.socket), 'apps') + '/';
    const out = execFileSync('ss', ['-x', '-n', '-p', 'state', 'established'], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l.includes(` ${dir}`) && l.includes(`pid=${worker},`)).length;
  };

  const pid = async (tenant: string, p = '/'): Promise<string> => {
    const r = await site.get(tenant, p);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /^\d+$/);
    return r.text;
  };

  test('requests one after another go on the one connection mod_lodge kept, which stays open between them', async () => {
    // The first goes through lodged, which answers with the route; the second goes straight.
    const first = await pid('one');
    assert.equal(await pid('one'), first);
    await eventually(() => connectionsOf(first) >= 1, 'a connection to the app socket kept after a request');
    for (let i = 0; i < 20; i++) assert.equal(await pid('one'), first);
    const kept = connectionsOf(first);
    assert.ok(kept >= 1, 'a connection stays established while no request is in hand');
    assert.ok(kept <= 2, `20 requests one after another kept ${kept} connections (one per Apache process at most)`);
  });

  test('a kept connection whose worker was killed: the next request is served by the next worker', async () => {
    const before = await pid('one');
    await eventually(() => connectionsOf(before) >= 1, 'a kept connection');
    process.kill(Number(before), 'SIGKILL');
    await eventually(() => !fs.existsSync(`/proc/${before}`), 'the worker gone');
    const after = await pid('one');
    assert.notEqual(after, before, 'a new worker answered');
    for (let i = 0; i < 5; i++) assert.equal(await pid('one'), after);
  });

  test('a request on a kept connection to a worker with no lane free goes to another worker, not behind the busy one', async () => {
    // Both workers started and each holding a kept connection: two requests at once, twice.
    for (let i = 0; i < 2; i++) await Promise.all([pid('busy', '/slow'), pid('busy', '/slow')]);
    const order: string[] = [];
    const slow = pid('busy', '/slow').then((p) => {
      order.push('slow');
      return p;
    });
    await new Promise((r) => setTimeout(r, 200));
    const quick: string[] = [];
    for (let i = 0; i < 6; i++) quick.push(await pid('busy'));
    order.push('quick');
    const busyPid = await slow;
    assert.deepEqual(order, ['quick', 'slow'], 'the quick requests did not wait for the slow one');
    assert.ok(!quick.includes(busyPid), `the busy worker (${busyPid}) took none of them: ${quick.join(' ')}`);
  });
});
