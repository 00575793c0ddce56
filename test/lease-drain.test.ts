import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { Site, eventually, startSite } from './helpers/site';
import { FRAMES_PY, assertCameOn, forEachApacheAndPath, untilOnPath } from './helpers/raw';
import { processesOf } from './helpers/users';

// Once its client has left, or its response was refused, a lent worker is told ABORT
// and what it still sends is read and dropped. An app that ignores ABORT and keeps
// writing (a byte at a time, slower than any per-read timer; or without end) must
// not keep the Apache child: the drain has a deadline and a byte cap, then the
// worker goes back STUCK and lodged replaces it. One worker (LodgeProcesses 1): the
// next request is only served once the stuck one is gone. On lodged's path the POST
// borrows the worker; straight to the app (lodged.json direct) mod_lodge has a
// connection of its own to it, drained the same way, and tells lodged its VERDICT.
const APP = `${FRAMES_PY}
def application(environ, start_response):
    path = environ["PATH_INFO"]
    came_on(path)
    environ["wsgi.input"].read()
    if path == "/trickle":
        send(head(200, [(b"Content-Type", b"text/plain")]), frame(DATA, b"x" * 100))
        while True:
            time.sleep(0.5)
            send(frame(DATA, b"y"))
    if path == "/flood":
        send(head(200, [(b"Content-Type", b"application/octet-stream")]))
        piece = frame(DATA, b"z" * 65536)
        while True:
            send(piece)
    if path == "/refused-trickle":
        send(head(200, [(b"Bad Name", b"v")]))
        while True:
            time.sleep(0.5)
            send(frame(DATA, b"y"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`;

forEachApacheAndPath((apache, via) => {
  let site: Site;
  before(async () => {
    site = await startSite({ ld: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\nLodgeTimeout 60\n', 'app.py': APP } }, via.lodged, apache);
  });
  after(async () => site?.stop());

  const pid = async () => {
    const r = await site.get('ld', '/pid', { body: 'x', timeoutMs: 60_000 });
    assert.equal(r.status, 200, r.text);
    return r.text;
  };
  /** The worker's pid, once a request takes the path under test (after a kill, lodged serves until a new worker is ready). */
  const pidOnPath = async () => {
    let seen = '';
    await untilOnPath(site, 'ld', '/pid', via, async () => (seen = await pid()));
    return seen;
  };
  const stuckLines = () => (site.lodgedLog().match(/did not stop within \d+ s of its client leaving; killed/g) ?? []).length;

  /** A POST (so the worker is lent) whose client leaves after the first bytes of the response. */
  function leaveEarly(p: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: site.sb.port, path: p, method: 'POST', headers: { Host: 'ld.localhost', 'Content-Length': '1' } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
      req.end('x');
    });
  }

  test('a worker that trickles a byte at a time after its client left is handed back STUCK, and replaced', async () => {
    const before = await pidOnPath();
    const seen = stuckLines();
    await leaveEarly('/trickle');
    assertCameOn(site, 'ld', '/trickle', via);
    await eventually(() => stuckLines() > seen, 'lodged was told the worker is stuck, and killed it', 30_000);
    await eventually(() => !processesOf(site.users.ld.uid).includes(Number(before)), 'the stuck worker is gone', 30_000);
    assert.match(site.errorLog(), /LG00052: lodge: the app's worker did not end its response within 5 s of being told to stop/);
    assert.notEqual(await pid(), before, 'a fresh worker serves the next request');
  });

  test('a worker that sends endless DATA after its client left is cut off at the byte cap, STUCK, and replaced', async () => {
    const before = await pidOnPath();
    const seen = stuckLines();
    await leaveEarly('/flood');
    assertCameOn(site, 'ld', '/flood', via);
    await eventually(() => stuckLines() > seen, 'lodged was told the worker is stuck, and killed it', 30_000);
    await eventually(() => !processesOf(site.users.ld.uid).includes(Number(before)), 'the stuck worker is gone', 30_000);
    assert.match(site.errorLog(), /LG00056: lodge: the app's worker sent more than \d+ bytes after being told to stop/);
    assert.notEqual(await pid(), before, 'a fresh worker serves the next request');
  });

  test('a refused response whose worker then trickles: the client gets its 502, the worker goes back STUCK', async () => {
    const before = await pidOnPath();
    const seen = stuckLines();
    const r = await site.get('ld', '/refused-trickle', { body: 'x', timeoutMs: 60_000 });
    assert.equal(r.status, 502);
    assertCameOn(site, 'ld', '/refused-trickle', via);
    await eventually(() => stuckLines() > seen, 'lodged was told the worker is stuck, and killed it', 30_000);
    await eventually(() => !processesOf(site.users.ld.uid).includes(Number(before)), 'the stuck worker is gone', 30_000);
    assert.notEqual(await pid(), before, 'a fresh worker serves the next request');
  });
});
