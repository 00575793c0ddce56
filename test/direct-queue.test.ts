import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { Site, forEachApache, startSite } from './helpers/site';
import { asWebUser, body, frame, pairs } from './helpers/web-user-frames';

// lodged.json `direct: true` with a short queue (maxQueue 1): the app's listen queue is
// its request queue, and a worker that does not hold the app's socket never makes
// lodged send Apache there. Past the queue mod_lodge hands the request to lodged, which
// answers 503 and counts it, as for a request past its own queue.

const CLI = path.join(__dirname, '..', 'sidecar', 'src', 'cli', 'main.js');

const APP = `
import os, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/nap":
        time.sleep(0.8)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`;

forEachApache((apache) => {
  let site: Site;

  before(async () => {
    site = await startSite({ q: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\nLodgeTimeout 10\n', 'app.py': APP } }, { direct: true, maxQueue: 1 }, apache);
  });
  after(async () => {
    await site?.stop();
  });

  test('a worker started before the app had its own socket is not routed to: the tenant\'s requests are served', async () => {
    // A peer that does not take routes (no ROUTE flag) starts the app's first worker.
    const root = path.join(site.root, 'q');
    const app = frame(0x01, pairs([['root', root], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ['config', `${root}/.htaccess`]]));
    const req = frame(0x02, pairs([['REQUEST_METHOD', 'GET'], ['PATH_INFO', '/'], ['SCRIPT_NAME', ''], ['SERVER_NAME', 'q.localhost'], ['SERVER_PORT', '80'], ['SERVER_PROTOCOL', 'HTTP/1.1']]));
    const first = body(await asWebUser(site.sb.socket, Buffer.concat([app, req, frame(0x04, Buffer.alloc(0))])));
    assert.match(first, /^\d+$/, first);
    for (let i = 0; i < 6; i++) {
      const r = await site.get('q', '/', { timeoutMs: 10_000 });
      assert.equal(r.status, 200, r.text);
    }
  });

  test('past the app\'s listen queue a request gets 503 with Retry-After, counted as turned away; the others are served', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await site.get('q', '/')).status, 200);
    const answers = await Promise.all(Array.from({ length: 12 }, () => site.get('q', '/nap', { timeoutMs: 30_000 })));
    const refused = answers.filter((a) => a.status === 503);
    const served = answers.filter((a) => a.status === 200);
    assert.equal(refused.length + served.length, 12, answers.map((a) => a.status).join(' '));
    assert.ok(refused.length >= 1, `some refused: ${answers.map((a) => a.status).join(' ')}`);
    assert.ok(served.length >= 2, `the worker and the queue's place served: ${answers.map((a) => a.status).join(' ')}`);
    for (const r of refused) assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    const st = spawnSync(process.execPath, [CLI, 'status', '--socket', site.sb.socket, '--json'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(st.status, 0, st.stderr);
    const app = statusSnapshot.parse(JSON.parse(st.stdout)).tenants[0].apps[0];
    assert.equal(app.turnedAway, refused.length, 'lodged counted each request it turned away');
    assert.ok(app.queue.peak >= 1 && app.capReached >= 1, JSON.stringify(app.queue));
  });
});
