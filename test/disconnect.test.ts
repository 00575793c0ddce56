import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// An endless stream whose close() leaves a mark, served by a single worker: if the
// client leaving did not stop the stream, the next request would never be served.
const APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
class Endless:
    def __iter__(self):
        n = 0
        while True:
            n += 1
            yield b"data: %d\\n\\n" % n
            time.sleep(0.02)
    def close(self):
        with open(os.path.join(HERE, "closed"), "w") as f:
            f.write("closed")
def application(environ, start_response):
    if environ["PATH_INFO"] == "/ping":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"pong"]
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    return Endless()
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ ds: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a client that leaves mid-stream stops the app (close() runs) and frees the worker', async () => {
    const closedMark = path.join(site.root, 'ds', 'closed');
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: site.sb.port, path: '/stream', headers: { Host: 'ds.localhost' } }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 200) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
    });
    await eventually(() => fs.existsSync(closedMark), 'the iterable was closed after the client left');
    const r = await site.get('ds', '/ping', { timeoutMs: 10_000 });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'pong');
  });
});
