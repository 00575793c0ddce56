import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { FRAMES_PY, assertCameOn, forEachPath, untilOnPath } from './helpers/raw';
import { LODGE_FRAMES_PY } from './helpers/raw-frames';

// A worker that is not serving a request has nothing to send. This one, once its
// request is answered, announces a 16 MiB frame and sends half of it on fd 3. Straight
// to the app (lodged.json direct) its requests come on the app's socket, and lodged,
// out of their path, still takes none of what the worker sends it.
const APP = `${FRAMES_PY}
import threading, lodgeframes as lf

def half_frame():
    time.sleep(0.5)  # the response is out: the worker is idle
    lf.send(lf.frame(lf.DATA, b'')[:4] + (16 << 20).to_bytes(4, 'big') + b'x' * (8 << 20))
    open('sent', 'w').close()

def application(environ, start_response):
    came_on(environ['PATH_INFO'])
    if environ['PATH_INFO'] == '/half':
        threading.Thread(target=half_frame, daemon=True).start()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
`;

forEachPath((via) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      m: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': APP, 'lodgeframes.py': LODGE_FRAMES_PY },
    }, via.lodged);
  });
  after(async () => site?.stop());

  function lodgedRssKiB(): number {
    const pid = fs.readFileSync(site.sb.lodgedPidFile, 'utf8').trim();
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  }

  test('an idle worker that sends half of a 16 MiB frame is replaced; lodged holds none of it; the app answers', async () => {
    let first = '';
    await untilOnPath(site, 'm', '/', via, async () => (first = (await site.get('m', '/')).text));
    for (let i = 0; i < 20; i++) await site.get('m', '/');
    const before = lodgedRssKiB();
    assert.equal((await site.get('m', '/half')).text, first);
    assertCameOn(site, 'm', '/half', via);
    await eventually(() => /while idle/.test(site.lodgedLog()) || fs.existsSync(path.join(site.root, 'm', 'sent')), 'the half frame went out');
    // Time for lodged to take what the kernel still holds of it.
    await new Promise((r) => setTimeout(r, 500));
    const grew = lodgedRssKiB() - before;
    assert.ok(grew < 4096, `lodged grew by ${grew} KiB`);
    assert.match(site.lodgedLog(), /sent \d+ bytes while idle \(a DATA frame header announcing 16777216 bytes\)/);
    assert.match(site.tenantLog('m'), /stopped: sent \d+ bytes while idle/);
    const next = await site.get('m', '/');
    assert.equal(next.status, 200);
    assert.notEqual(next.text, first, 'a new worker serves');
  });
});
