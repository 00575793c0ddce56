import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// One worker, room for one waiting request: with the worker held, of two more
// requests one waits and one is turned away at once with 503 and Retry-After.
const APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
def application(environ, start_response):
    if environ["PATH_INFO"] == "/hold":
        open(os.path.join(HERE, "holding"), "w").close()
        for _ in range(600):
            if os.path.exists(os.path.join(HERE, "release")):
                break
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ q: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': APP } }, { maxQueue: 1 }, apache);
  });
  after(async () => site?.stop());

  test('past the queue limit a request gets 503 with Retry-After; the queued one is served', async () => {
    const dir = path.join(site.root, 'q');
    const held = site.get('q', '/hold');
    await eventually(() => fs.existsSync(path.join(dir, 'holding')), 'the first request holds the only worker');
    const b = site.get('q', '/b');
    const c = site.get('q', '/c');
    const first = await Promise.race([b, c]);
    assert.equal(first.status, 503, `the overflow answer comes at once: ${first.status} ${first.text}`);
    assert.match(String(first.headers['retry-after']), /^\d+$/);
    fs.writeFileSync(path.join(dir, 'release'), '');
    const [rh, rb, rc] = await Promise.all([held, b, c]);
    assert.equal(rh.status, 200);
    const statuses = [rb.status, rc.status].sort();
    assert.deepEqual(statuses, [200, 503]);
  });
});
