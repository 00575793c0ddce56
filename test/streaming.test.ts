import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// The app sends its first event, then waits until the test has seen that event
// (the test creates the file `go`); only then does it send the last one. So the test
// passes only if the first event crossed Apache, lodged and the worker unbuffered.
const SSE_APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
def application(environ, start_response):
    if environ["PATH_INFO"] == "/sized":
        body = b"x" * 100000
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    return events()

def events():
    yield b"data: first\\n\\n"
    go = os.path.join(HERE, "go")
    for _ in range(600):
        if os.path.exists(go):
            break
        time.sleep(0.05)
    yield b"data: last (" + (b"released" if os.path.exists(go) else b"timed out") + b")\\n\\n"
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ sse: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': SSE_APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a streamed response reaches the client event by event, before the app has finished', async () => {
    const go = path.join(site.root, 'sse', 'go');
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: site.sb.port, path: '/events', headers: { Host: 'sse.localhost' } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (s: string) => {
          seen.push(s);
          // The app is still waiting for `go` at this point.
          if (seen.join('').includes('data: first') && !fs.existsSync(go)) fs.writeFileSync(go, '');
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    const all = seen.join('');
    assert.match(all, /data: first\n\n/);
    assert.match(all, /data: last \(released\)\n\n/, 'the first event arrived while the app was still waiting');
  });

  test('HEAD gets the headers with Content-Length passed through and no body', async () => {
    const r = await site.get('sse', '/sized', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '100000');
    assert.equal(r.body.length, 0);
    const g = await site.get('sse', '/sized');
    assert.equal(g.headers['content-length'], '100000');
    assert.equal(g.body.length, 100000);
  });

  test('after a HEAD the same connection to lodged serves the next request', async () => {
    await eventually(async () => (await site.get('sse', '/sized')).body.length === 100000, 'GET after HEAD');
  });
});
