import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// Requests with a body borrow the worker: mod_lodge streams the body to it and reads
// the response from it, lodged only lends and takes back. One worker
// (LodgeProcesses 1), so its pid tells whether a failure cost the worker or not.
const APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
class Endless:
    def __iter__(self):
        while True:
            yield b"x" * 4096
            time.sleep(0.01)
    def close(self):
        with open(os.path.join(HERE, "closed"), "w") as f:
            f.write("closed")
def echo(inp):
    while True:
        piece = inp.read(65536)
        if not piece:
            return
        yield piece
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/early":
        start_response("413 Payload Too Large", [("Content-Type", "text/plain")])
        return [b"not reading that"]
    if path == "/early-large":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"z" * (2 << 20)]
    if path == "/echo":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return echo(environ["wsgi.input"])
    body = environ["wsgi.input"].read()
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()
    if path == "/sleep":
        time.sleep(60)
    if path == "/loop":
        while True:
            pass
    if path == "/crash":
        os._exit(7)
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"y" * (1 << 20)]
    if path == "/short":
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only ten b"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (os.getpid(), len(body))]
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ bw: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\nLodgeTimeout 3\nLodgeCPU 1\n', 'app.py': APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  const post = (p: string, body: Buffer | string = 'x', timeoutMs = 20_000) => site.get('bw', p, { body, timeoutMs });
  /** The worker's pid, from a request with a body; asserts the request worked. */
  async function workerPid(): Promise<string> {
    const r = await post('/pid', 'abc');
    assert.equal(r.status, 200, r.text);
    const [pid, len] = r.text.split(' ');
    assert.equal(len, '3');
    return pid;
  }

  test('a body reaches the borrowed worker whole; the worker is handed back and serves on', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const a = await post('/pid', body);
    assert.equal(a.status, 200);
    const [pid, len] = a.text.split(' ');
    assert.equal(len, String(body.length));
    const chunked = await site.get('bw', '/pid', { body, chunked: 100_000 });
    assert.equal(chunked.text, `${pid} ${body.length}`);
    // A bodyless request goes through lodged, to the same worker.
    const get = await site.get('bw', '/pid');
    assert.equal(get.text, `${pid} 0`);
  });

  test('bodies and large responses do not pass through lodged: its byte counters show it', async () => {
    const pid = site.sb.lodged.pid;
    assert.ok(pid, 'lodged wrote its pid');
    const io = () => {
      const text = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
      return { read: Number(/^rchar: (\d+)/m.exec(text)![1]), written: Number(/^wchar: (\d+)/m.exec(text)![1]) };
    };
    const MiB = 1024 * 1024;
    const before = io();
    const up = await post('/pid', Buffer.alloc(32 * MiB, 3));
    assert.match(up.text, / 33554432$/);
    const afterUpload = io();
    assert.ok(afterUpload.read - before.read < 4 * MiB, `lodged read ${afterUpload.read - before.read} bytes for a 32 MiB upload`);
    // The first large responses are carried (lodged learns their size); then the
    // worker is lent for bodyless requests too, but for one in 16 that keeps measuring.
    for (let i = 0; i < 48; i++) {
      const r = await site.get('bw', '/big');
      assert.equal(r.body.length, MiB);
    }
    const written = io().written - afterUpload.written;
    assert.ok(written < 12 * MiB, `lodged wrote ${written} bytes for 48 MiB of responses`);
  });

  test('an app that answers without reading a large body: the answer arrives, the worker serves on', async () => {
    const pid = await workerPid();
    const r = await post('/early', Buffer.alloc(8 * 1024 * 1024, 1));
    assert.equal(r.status, 413);
    assert.equal(r.text, 'not reading that');
    assert.equal(await workerPid(), pid, 'the same worker: the unread body was dropped, not the worker');
  });

  test('an app that streams while it reads, or answers at length before reading: both ways flow at once', async () => {
    // Sending the whole body before reading the response would leave mod_lodge and
    // the worker each waiting on the other, until LodgeTimeout (3 s) gave a 504.
    const pid = await workerPid();
    const body = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    const echoed = await post('/echo', body);
    assert.equal(echoed.status, 200);
    assert.ok(echoed.body.equals(body), `echoed ${echoed.body.length} bytes, the same as sent`);
    const early = await post('/early-large', Buffer.alloc(8 * 1024 * 1024, 5));
    assert.equal(early.status, 200);
    assert.equal(early.body.length, 2 << 20);
    assert.equal(await workerPid(), pid, 'the same worker served all of it');
  });

  test('a client that leaves mid-response: the app is told (close() runs) and the same worker serves on', async () => {
    const pid = await workerPid();
    const mark = path.join(site.root, 'bw', 'closed');
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: site.sb.port, path: '/stream', method: 'POST', headers: { Host: 'bw.localhost', 'Content-Length': '5' } }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 64 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
      req.end('hello');
    });
    await eventually(() => fs.existsSync(mark), 'the iterable was closed after the client left');
    assert.equal(await workerPid(), pid, 'the same worker: it was told to stop, not killed');
  });

  test('no progress for LodgeTimeout: 504, the tenant log says so, a fresh worker serves on', async () => {
    const pid = await workerPid();
    const r = await post('/sleep');
    assert.equal(r.status, 504);
    await eventually(() => /POST \/sleep: took longer than LodgeTimeout 3 s/.test(site.tenantLog('bw')), 'the tenant log names the request and the limit');
    assert.notEqual(await workerPid(), pid);
  });

  test('LodgeCPU stops a loop: 504 with lodged\'s reason; a crash: 502; the app serves on', async () => {
    const loop = await post('/loop');
    assert.equal(loop.status, 504);
    assert.match(site.tenantLog('bw'), /POST \/loop: request used more than LodgeCPU 1 s/);
    assert.match(site.errorLog(), /LodgeCPU/);
    const crash = await post('/crash');
    assert.equal(crash.status, 502);
    await eventually(() => /POST \/crash: worker \d+ exited with status 7/.test(site.tenantLog('bw')), 'the tenant log says how the worker ended');
    await workerPid();
  });

  test('an app error answered by the worker (ERROR frame) costs the request a 502, not the worker', async () => {
    const pid = await workerPid();
    const r = await post('/short');
    assert.equal(r.status, 502);
    assert.match(site.tenantLog('bw'), /POST \/short: app.py: response is 90 bytes shorter than its Content-Length/);
    assert.match(site.errorLog(), /response is 90 bytes shorter than its Content-Length/);
    assert.equal(await workerPid(), pid);
  });
});
