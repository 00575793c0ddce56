import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// A Starlette app (Debian's python3-starlette) and a plain ASGI app as tenants: the
// request body reaches the app in pieces as it streams in (receive() with more_body),
// a client that leaves mid-stream is an http.disconnect the app sees, and the worker
// serves the next request.

const STARLETTE = `
import asyncio, hashlib, os
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

HERE = os.path.dirname(os.path.abspath(__file__))

async def home(request):
    return PlainTextResponse("starlette at %s" % request.url.path)

async def upload(request):
    pieces, size, h = 0, 0, hashlib.sha256()
    async for chunk in request.stream():
        if chunk:
            pieces += 1
            size += len(chunk)
            h.update(chunk)
    return JSONResponse({"pieces": pieces, "size": size, "sha256": h.hexdigest()})

async def forever(request):
    async def ticks():
        try:
            n = 0
            while True:
                yield b"tick %d\\n" % n
                n += 1
                await asyncio.sleep(0.1)
        finally:
            with open(os.path.join(HERE, "left.tmp"), "w") as f:
                f.write("the stream was stopped after %d ticks" % n)
            os.rename(os.path.join(HERE, "left.tmp"), os.path.join(HERE, "left"))
    return StreamingResponse(ticks(), media_type="text/plain")

app = Starlette(routes=[Route("/", home), Route("/upload", upload, methods=["POST"]), Route("/forever", forever)])
`;

// Plain ASGI: the body pieces as receive() gives them, answered as a stream of pieces.
const RAW = `
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    sizes, more = [], True
    while more:
        m = await receive()
        assert m["type"] == "http.request", m
        sizes.append(len(m["body"]))
        more = m.get("more_body", False)
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain"), (b"x-pieces", str(len(sizes)).encode())]})
    for s in sizes:
        await send({"type": "http.response.body", "body": b"%d," % s, "more_body": True})
    await send({"type": "http.response.body", "body": b"end"})
    # After the response, receive() says the exchange is over.
    m = await receive()
    assert m["type"] == "http.disconnect", m
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      st: { '.htaccess': 'LodgeApp asgi main.py:app\nLodgeProcesses 1\n', 'main.py': STARLETTE },
      raw: { '.htaccess': 'LodgeApp asgi main.py\n', 'main.py': RAW },
    }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a Starlette app answers its routes', async () => {
    const r = await site.get('st', '/');
    assert.equal(r.status, 200, r.text + site.tenantLog('st'));
    assert.equal(r.text, 'starlette at /');
    assert.equal((await site.get('st', '/nope')).status, 404);
  });

  for (const chunked of [false, true]) {
    test(`a 1 MiB upload${chunked ? ' (chunked)' : ''} reaches the app in pieces, whole`, async () => {
      const body = crypto.randomBytes(1 << 20);
      const r = await site.get('st', '/upload', { body, chunked: chunked ? 64 * 1024 : undefined, headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(r.status, 200, r.text);
      const got = JSON.parse(r.text);
      assert.equal(got.size, body.length);
      assert.equal(got.sha256, crypto.createHash('sha256').update(body).digest('hex'));
      assert.ok(got.pieces > 1, `read in ${got.pieces} pieces`);
    });
  }

  test('a client that leaves a stream is an http.disconnect: the app stops it, the worker serves on', async () => {
    const left = path.join(site.root, 'st', 'left');
    fs.rmSync(left, { force: true });
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: site.sb.port, path: '/forever', headers: { Host: `st.localhost:${site.sb.port}` }, agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        let seen = '';
        res.on('data', (c: Buffer) => {
          seen += c.toString();
          if (/tick 2\n/.test(seen)) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    await eventually(() => fs.existsSync(left), 'the app saw the client go and ended its stream', 30_000);
    assert.match(fs.readFileSync(left, 'utf8'), /stopped after \d+ ticks/);
    assert.equal((await site.get('st', '/')).text, 'starlette at /', 'the one worker serves the next request');
  });

  test('a plain ASGI app gets the body as pieces with more_body, and streams its answer', async () => {
    const body = Buffer.alloc(600 * 1024, 7);
    const r = await site.get('raw', '/', { body });
    assert.equal(r.status, 201, r.text + site.tenantLog('raw'));
    const sizes = r.text.replace(/,?end$/, '').split(',').map(Number);
    assert.equal(Number(r.headers['x-pieces']), sizes.length);
    assert.ok(sizes.length > 1, `${sizes.length} pieces`);
    assert.equal(sizes.reduce((a, b) => a + b, 0), body.length);
    const empty = await site.get('raw', '/');
    assert.equal(empty.status, 201);
    assert.equal(empty.text, '0,end', 'a request without a body: one empty piece, more_body false');
    assert.doesNotMatch(site.tenantLog('raw'), /AssertionError/);
  });
});
