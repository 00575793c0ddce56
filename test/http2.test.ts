import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { H2Mode, connectH2, h2DataUntil, h2Reply, h2Request, http2Directives, makeCertificate } from './helpers/h2';
import { Site, startSite } from './helpers/site';
import { STATUS_PASSWORD, STATUS_USER, makePasswords, statusLocation } from './helpers/status-host';

// Hosts put mod_http2 in front of Apache 2.4 (1.3 has no HTTP/2): Lodge's apps behind
// it, over TLS (h2) and in the clear (h2c), several streams of one connection at once.

const APP = `
import hashlib, json, os, time
from urllib.parse import parse_qs

def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/echo":
        h = hashlib.sha256()
        n = 0
        while True:
            b = environ["wsgi.input"].read(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        out = {"i": q.get("i"), "n": n, "sha256": h.hexdigest(), "pid": os.getpid(),
               "protocol": environ.get("SERVER_PROTOCOL"), "scheme": environ["wsgi.url_scheme"],
               "https": environ.get("HTTPS"), "http2": environ.get("HTTP2"),
               "content_length": environ.get("CONTENT_LENGTH")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(out).encode()]
    if path == "/stream":
        # The second part waits for the client to have seen the first: a first part
        # held back anywhere on the way would never arrive, and the app gives up.
        flag = os.path.join(os.environ["H2_FLAGS"], q["flag"])
        def parts():
            yield b"first\\n"
            deadline = time.time() + 20
            while not os.path.exists(flag):
                if time.time() > deadline:
                    yield b"the client never saw the first part\\n"
                    return
                time.sleep(0.01)
            yield b"second\\n"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return parts()
    if path == "/endless":
        def parts():
            yield ("pid %d\\n" % os.getpid()).encode()
            while True:
                yield b"x" * 1024
                time.sleep(0.01)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return parts()
    if path == "/flood":
        def parts():
            yield ("pid %d\\n" % os.getpid()).encode()
            chunk = b"y" * 65536
            while True:
                yield chunk
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return parts()
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]
`;

const HOST = 'app.localhost';
const AUTH = `Basic ${Buffer.from(`${STATUS_USER}:${STATUS_PASSWORD}`).toString('base64')}`;
const MiB = 1024 * 1024;

for (const mode of ['h2', 'h2c'] as H2Mode[]) {
  describe(`HTTP/2 (${mode}) through mod_http2, Apache 2.4`, () => {
    let site: Site;
    let tmp: string;
    let flags: string;
    let ca: string | undefined;
    let session: http2.ClientHttp2Session;
    let flagCount = 0;
    const flag = () => `f${++flagCount}`;
    const release = (name: string) => fs.writeFileSync(path.join(flags, name), '');

    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-h2-'));
      fs.chmodSync(tmp, 0o755);
      flags = path.join(tmp, 'flags');
      fs.mkdirSync(flags, { mode: 0o755 });
      const tls = mode === 'h2' ? makeCertificate(tmp, HOST) : undefined;
      ca = tls?.cert;
      const passwords = makePasswords();
      fs.renameSync(passwords.file, path.join(tmp, 'htpasswd'));
      fs.rmSync(passwords.dir, { recursive: true, force: true });
      const env = `LodgeEnv H2_FLAGS ${flags}\n`;
      site = await startSite({
        app: {
          'many/.htaccess': `LodgeApp wsgi app.py\nLodgeProcesses 4\n${env}`,
          'many/app.py': APP,
          'one/.htaccess': `LodgeApp wsgi app.py\nLodgeProcesses 1\n${env}`,
          'one/app.py': APP,
        },
      }, undefined, '2.4', { hostDirectives: [...http2Directives(mode, tls), ...statusLocation(path.join(tmp, 'htpasswd'))] });
      session = await connectH2(mode, site.sb.port, HOST, ca);
    });
    after(async () => {
      session?.close();
      await site?.stop();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('many streams at once on one connection reach one app, each with its own body back', async () => {
      const bodies = Array.from({ length: 24 }, (_, i) => crypto.randomBytes(8 * 1024 + i * 512));
      const replies = await Promise.all(bodies.map((b, i) => h2Request(session, { ':method': 'POST', ':path': `/many/echo?i=${i}`, 'content-length': b.length }, b)));
      const pids = new Set<number>();
      replies.forEach((r, i) => {
        assert.equal(r.status, 200, r.body.toString());
        const e = JSON.parse(r.body.toString());
        assert.equal(e.i, String(i));
        assert.equal(e.n, bodies[i].length);
        assert.equal(e.sha256, crypto.createHash('sha256').update(bodies[i]).digest('hex'));
        assert.equal(e.protocol, 'HTTP/2.0');
        assert.equal(e.http2, 'on', "mod_http2's HTTP2 variable reaches the app");
        assert.equal(e.scheme, mode === 'h2' ? 'https' : 'http');
        assert.equal(e.https, mode === 'h2' ? 'on' : null);
        pids.add(e.pid);
      });
      assert.ok(pids.size <= 4, 'LodgeProcesses 4 holds');
      assert.equal(session.closed, false, 'all on the one connection');
    });

    test('a streamed response arrives part by part: the first before the app has finished', async () => {
      const f = flag();
      const stream = session.request({ ':path': `/many/stream?flag=${f}` });
      const whole = h2Reply(stream);
      await h2DataUntil(stream, (s) => s.includes('first\n'));
      release(f);
      const r = await whole;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'first\nsecond\n');
    });

    test('a 24 MiB upload with no content-length arrives whole', async () => {
      const body = crypto.randomBytes(24 * MiB);
      const stream = session.request({ ':method': 'POST', ':path': '/many/echo?i=big', 'content-type': 'application/octet-stream' });
      const reply = h2Reply(stream, 120_000);
      for (let at = 0; at < body.length; at += 256 * 1024) {
        if (!stream.write(body.subarray(at, at + 256 * 1024))) await new Promise((r) => stream.once('drain', r));
      }
      stream.end();
      const r = await reply;
      assert.equal(r.status, 200, r.body.toString());
      const e = JSON.parse(r.body.toString());
      assert.equal(e.content_length, null, 'the request had no length');
      assert.equal(e.n, body.length);
      assert.equal(e.sha256, crypto.createHash('sha256').update(body).digest('hex'));
    });

    test('a stream reset mid-response frees its worker for the next request; the neighbour stream completes', async () => {
      // The neighbour: a response under way on the same connection.
      const nf = flag();
      const neighbour = session.request({ ':path': `/many/stream?flag=${nf}` });
      const neighbourWhole = h2Reply(neighbour);
      await h2DataUntil(neighbour, (s) => s.includes('first\n'));
      // The app of one worker streams without end; the client resets the stream.
      const endless = session.request({ ':path': '/one/endless' });
      const head = await h2DataUntil(endless, (s) => /pid \d+\n/.test(s));
      const pid = Number(/pid (\d+)/.exec(head)![1]);
      await new Promise<void>((resolve) => endless.close(http2.constants.NGHTTP2_CANCEL, resolve));
      release(nf);
      const n = await neighbourWhole;
      assert.equal(n.status, 200);
      assert.equal(n.body.toString(), 'first\nsecond\n', 'the neighbour stream is not hurt');
      // The one worker is free again (not killed and replaced): it serves the next request.
      const next = await h2Request(session, { ':path': '/one/pid' });
      assert.equal(next.status, 200);
      assert.equal(Number(next.body.toString()), pid);
    });

    test('more uploads at once than the app has workers: each waits its turn, none stalls the connection', async () => {
      const bodies = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(MiB + i));
      const replies = await Promise.all(bodies.map((b, i) => h2Request(session, { ':method': 'POST', ':path': `/many/echo?i=u${i}` }, b)));
      replies.forEach((r, i) => {
        assert.equal(r.status, 200, r.body.toString());
        const e = JSON.parse(r.body.toString());
        assert.equal(e.n, bodies[i].length);
        assert.equal(e.sha256, crypto.createHash('sha256').update(bodies[i]).digest('hex'));
      });
    });

    test('a reset while the response waits on flow control frees the worker too', async () => {
      const flood = session.request({ ':path': '/one/flood' });
      const head = await h2DataUntil(flood, (s) => /pid \d+\n/.test(s));
      flood.pause(); // the window fills: Apache's write of the response blocks
      const pid = Number(/pid (\d+)/.exec(head)![1]);
      await new Promise<void>((resolve) => flood.close(http2.constants.NGHTTP2_CANCEL, resolve));
      const next = await h2Request(session, { ':path': '/one/pid' });
      assert.equal(next.status, 200);
      assert.equal(Number(next.body.toString()), pid);
    });

    test('the status page answers over HTTP/2', async () => {
      const r = await h2Request(session, { ':path': '/lodge-status?json', authorization: AUTH });
      assert.equal(r.status, 200, r.body.toString());
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const snap = statusSnapshot.parse(JSON.parse(r.body.toString()));
      const apps = snap.tenants.flatMap((t) => t.apps);
      const one = apps.find((a) => a.root.endsWith('/app/one'));
      assert.ok(one, `the app is listed: ${apps.map((a) => a.root).join(', ')}`);
      const denied = await h2Request(session, { ':path': '/lodge-status?json' });
      assert.equal(denied.status, 401);
    });
  });
}
