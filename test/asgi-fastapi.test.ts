import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { statusJson } from './helpers/status-json';

// A FastAPI app (Debian's python3-fastapi) as a tenant, `LodgeApp asgi main.py:app`:
// Lodge's own runtime is the ASGI server (no uvicorn in the worker). Path parameters,
// a JSON body, a streamed response that arrives piece by piece, a startup hook, and the
// request counted in the status like a WSGI app's.

const MAIN = `
import asyncio, os
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

HERE = os.path.dirname(os.path.abspath(__file__))
app = FastAPI()

@app.on_event("startup")
async def started():
    app.state.greeting = "hello from startup %d" % os.getpid()

class Order(BaseModel):
    item: str
    price: float
    quantity: int

@app.get("/")
async def index():
    return {"greeting": app.state.greeting}

@app.get("/items/{item_id}")
async def item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}

@app.post("/orders")
async def order(o: Order):
    return {"item": o.item, "total": o.price * o.quantity}

@app.get("/scope")
async def scope(request: Request):
    s = request.scope
    return {"type": s["type"], "asgi": s["asgi"], "http_version": s["http_version"], "method": s["method"],
            "scheme": s["scheme"], "path": s["path"], "raw_path": s["raw_path"].decode("latin-1"),
            "query_string": s["query_string"].decode("latin-1"), "root_path": s["root_path"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in s["headers"]],
            "client": list(s["client"]), "server": list(s["server"])}

@app.get("/stream")
async def stream():
    async def pieces():
        yield b"first piece\\n"
        # The next piece waits for a file the client creates once it has the first:
        # it can only come if the first went out unbuffered.
        go = os.path.join(HERE, "go")
        for _ in range(600):
            if os.path.exists(go):
                break
            await asyncio.sleep(0.05)
        yield b"second piece, after go\\n"
    return StreamingResponse(pieces(), media_type="text/plain")

@app.get("/boom")
async def boom():
    raise ValueError("tenant bug 4321")
`;

// The same kind of app in a sub-folder of the tenant's site: FastAPI routes on the path
// below the folder, and the folder is its root_path, so the URLs it makes lead back to it.
const SHOP = `
from fastapi import FastAPI, Request

app = FastAPI()

@app.get("/items/{item_id}", name="item")
async def item(item_id: int, request: Request):
    s = request.scope
    return {"item_id": item_id, "path": s["path"], "root_path": s["root_path"],
            "raw_path": s["raw_path"].decode("latin-1"), "self": str(request.url_for("item", item_id=item_id))}
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        fa: { '.htaccess': 'LodgeApp asgi main.py:app\n', 'main.py': MAIN },
        sub: { 'index.html': 'the site itself\n', 'shop/.htaccess': 'LodgeApp asgi main.py\n', 'shop/main.py': SHOP },
      },
      undefined,
      apache,
    );
  });
  after(async () => site?.stop());

  test('a startup hook sets state that a route reads', async () => {
    const r = await site.get('fa', '/');
    assert.equal(r.status, 200, r.text + site.tenantLog('fa'));
    assert.match(JSON.parse(r.text).greeting, /^hello from startup \d+$/);
  });

  test('a path parameter is converted, and a bad one is FastAPI\'s 422', async () => {
    const r = await site.get('fa', '/items/42?q=caf%C3%A9');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(JSON.parse(r.text), { item_id: 42, q: 'café' });
    assert.equal((await site.get('fa', '/items/notanumber')).status, 422);
    assert.equal((await site.get('fa', '/nowhere')).status, 404);
  });

  test('a JSON body is parsed and answered with a computed field', async () => {
    const r = await site.get('fa', '/orders', { body: JSON.stringify({ item: 'tea', price: 2.5, quantity: 4 }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.text), { item: 'tea', total: 10 });
    const bad = await site.get('fa', '/orders', { body: '{"item": "tea"}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(bad.status, 422);
  });

  test('the scope is ASGI 3: method, path, raw path, query string, lowercased headers, client, server', async () => {
    const r = await site.get('fa', '/scope?a=1&b=%20', { headers: { 'X-Custom-Thing': 'v1' } });
    const s = JSON.parse(r.text);
    assert.equal(s.type, 'http');
    assert.equal(s.asgi.version, '3.0');
    assert.equal(s.http_version, '1.1');
    assert.equal(s.method, 'GET');
    assert.equal(s.scheme, 'http');
    assert.equal(s.path, '/scope');
    assert.equal(s.raw_path, '/scope');
    assert.equal(s.query_string, 'a=1&b=%20');
    assert.equal(s.root_path, '');
    const headers = new Map<string, string>(s.headers);
    assert.equal(headers.get('x-custom-thing'), 'v1');
    assert.equal(headers.get('host'), `fa.localhost:${site.sb.port}`);
    assert.ok(s.headers.every(([k]: [string]) => k === k.toLowerCase()), 'header names are lowercase');
    assert.equal(s.client[0], '127.0.0.1');
    assert.ok(s.client[1] > 0);
    assert.equal(s.server[1], site.sb.port);
  });

  test('an app in a sub-folder routes below it, with the folder as root_path and in the URLs it makes', async () => {
    const r = await site.get('sub', '/shop/items/7');
    assert.equal(r.status, 200, r.text + site.tenantLog('sub', 'shop'));
    assert.deepEqual(JSON.parse(r.text), {
      item_id: 7,
      path: '/items/7',
      root_path: '/shop',
      raw_path: '/shop/items/7',
      self: `http://sub.localhost:${site.sb.port}/shop/items/7`,
    });
    assert.equal((await site.get('sub', '/shop/nowhere')).status, 404);
    assert.equal((await site.get('sub', '/index.html')).text, 'the site itself\n', 'the rest of the site is Apache\'s');
  });

  test('a StreamingResponse arrives piece by piece: the first before the last is made', async () => {
    const go = path.join(site.root, 'fa', 'go');
    fs.rmSync(go, { force: true });
    const got = await new Promise<{ status: number; pieces: string[] }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: site.sb.port, path: '/stream', headers: { Host: `fa.localhost:${site.sb.port}` }, agent: false }, (res) => {
        const pieces: string[] = [];
        res.on('data', (c: Buffer) => {
          pieces.push(c.toString());
          // Only once the first piece is here may the app make the second.
          if (pieces.length === 1) fs.writeFileSync(go, '');
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, pieces }));
        res.on('error', reject);
      });
      req.setTimeout(60_000, () => req.destroy(new Error('no end to /stream')));
      req.on('error', reject);
    });
    assert.equal(got.status, 200);
    assert.equal(got.pieces[0], 'first piece\n', 'the first piece came alone');
    assert.equal(got.pieces.join(''), 'first piece\nsecond piece, after go\n');
  });

  test('an exception in a route is a 500, its traceback in the tenant log; the next request works', async () => {
    const r = await site.get('fa', '/boom');
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.text, /tenant bug 4321/);
    await eventually(() => /ValueError: tenant bug 4321/.test(site.tenantLog('fa')), 'traceback in the tenant log');
    assert.match(site.tenantLog('fa'), /main\.py", line \d+, in boom/);
    assert.equal((await site.get('fa', '/items/1')).status, 200);
  });

  test('the status JSON counts the ASGI app\'s requests like a WSGI app\'s', async () => {
    const before = await site.get('fa', '/items/7');
    assert.equal(before.status, 200);
    assert.equal((await site.get('fa', '/nowhere')).status, 404);
    const uid = site.users.fa.uid;
    const app = () => {
      const t = statusJson(site).tenants.find((x) => x.uid === uid);
      assert.ok(t, 'the tenant is in the status');
      return t.apps[0];
    };
    await eventually(() => (app().requests['4xx'] ?? 0) >= 1, 'the 404 is counted');
    const a = app();
    assert.equal(a.root, path.join(site.root, 'fa'));
    assert.equal(a.kind, 'asgi');
    assert.ok(a.requests['2xx'] >= 1 && a.requests['5xx'] >= 1, JSON.stringify(a.requests));
    assert.ok(a.requests.total >= a.requests['2xx'] + a.requests['4xx'] + a.requests['5xx']);
  });
});
