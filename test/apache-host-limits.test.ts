import { after, before } from 'node:test';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// The host's caps in Apache's own config (LodgeLimit) reach lodged with every request
// and clamp what a tenant asks for.
const APP = 'import os\ndef application(e, s):\n    s("200 OK", [])\n    return [str(os.getpid()).encode()]\n';
const NODE_APP = "require('node:http').createServer((q, s) => s.end(String(process.pid))).listen(3000);\n";
const PY_APP = { 'main.py': 'def app(): pass\n', '.htaccess': 'LodgeApp asgi main.py:app\n' };

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        greedy: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 50\nLodgeTimeout 9000\n', 'app.py': APP },
        lanes: { '.htaccess': 'LodgeApp node server.js\nLodgeConcurrency 50\n', 'server.js': NODE_APP },
      },
      undefined,
      apache,
      { hostDirectives: ['LodgeLimit processes 3', 'LodgeLimit timeout 20', 'LodgeLimit concurrency 4'] },
    );
  });
  after(async () => site?.stop());

  test('a tenant asking for more than the host\'s LodgeLimit gets the cap, with a log line saying so', async () => {
    assert.equal((await site.get('greedy', '/')).status, 200);
    await eventually(() => /LodgeProcesses 50 is over the host's limit; using 3/.test(site.lodgedLog()), 'processes clamped to 3');
    assert.match(site.lodgedLog(), /LodgeTimeout 9000 is over the host's limit; using 20/);
    // Many requests at once never start more than 3 workers.
    const pids = new Set((await Promise.all(Array.from({ length: 24 }, () => site.get('greedy', '/')))).map((r) => r.text));
    assert.ok(pids.size <= 3, `${pids.size} workers served`);
  });

  test("a tenant's LodgeConcurrency over LodgeLimit concurrency is clamped, with the note in the tenant's log", async () => {
    const r = await site.get('lanes', '/');
    assert.equal(r.status, 200);
    await eventually(() => /lanes\/\.htaccess: LodgeConcurrency 50 is over the host's limit; using 4/.test(site.lodgedLog()), 'concurrency clamped to 4');
  });

  test('a LodgeLimit concurrency outside 1-64 (the most lanes a worker has) stops Apache at start, naming the value', async () => {
    for (const value of ['0', '65', 'many']) {
      await assert.rejects(
        startSite({ py: PY_APP }, undefined, apache, { hostDirectives: [`LodgeLimit concurrency ${value}`] }),
        new RegExp(`LodgeLimit concurrency takes a whole number from 1 to 64 \\(e\\.g\\. LodgeLimit concurrency 16\\), got '${value}'`),
      );
    }
    await assert.rejects(
      startSite({ py: PY_APP }, undefined, apache, { hostDirectives: ['LodgeLimit lanes 4'] }),
      /LodgeLimit takes timeout, memory, processes, cpu, tasks, idle or concurrency, then/,
    );
  });
});
