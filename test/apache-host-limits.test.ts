import { after, before } from 'node:test';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// The host's caps in Apache's own config (LodgeLimit) reach lodged with every request
// and clamp what a tenant asks for.
const APP = 'import os\ndef application(e, s):\n    s("200 OK", [])\n    return [str(os.getpid()).encode()]\n';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      { greedy: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 50\nLodgeTimeout 9000\n', 'app.py': APP } },
      undefined,
      apache,
      { hostDirectives: ['LodgeLimit processes 3', 'LodgeLimit timeout 20'] },
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
});
