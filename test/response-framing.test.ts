import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, startSite } from './helpers/site';
import { FRAMES_PY, assertCameOn, firstResponse, forEachApacheAndPath, rawExchange, untilOnPath } from './helpers/raw';

// A response that must have no body (1xx, 204, 304, any answer to HEAD) but comes
// with one: written on a kept connection, those bytes would be read as the next
// response, one the tenant chose (behind a shared cache: for another site's name).
// The app writes its frames itself (serve_raw). On lodged's path POST requests borrow
// the worker, so those frames reach mod_lodge straight, and GET requests go through
// lodged; straight to the app (lodged.json direct) both come on mod_lodge's own
// connection to the app's socket.
const APP = `${FRAMES_PY}
FORGED = b"HTTP/1.1 200 OK\\r\\nX-Forged: yes\\r\\nContent-Length: 6\\r\\n\\r\\nforged"
def respond(path):
    if path.endswith("204"):
        return head(204), frame(DATA, FORGED), frame(END)
    if path.endswith("304"):
        return head(304, [(b"ETag", b'"v1"')]), frame(DATA, FORGED), frame(END)
    if path == "/long":
        return head(200, [(b"Content-Length", b"4")]), frame(DATA, b"real"), frame(DATA, FORGED), frame(END)
    if path == "/any":
        return head(200, [(b"Content-Type", b"text/plain")]), frame(DATA, FORGED), frame(END)
    return head(200, [(b"Content-Type", b"text/plain")]), frame(DATA, b"real"), frame(END)
def application(environ, start_response):
    serve_raw(respond, environ)
`;

forEachApacheAndPath((apache, via) => {
  let site: Site;
  before(async () => {
    site = await startSite({ fr: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP } }, via.lodged, apache);
    await untilOnPath(site, 'fr', '/warm', via, async () => assert.equal((await site.get('fr', '/warm')).text, 'real'));
  });
  after(async () => site?.stop());

  const host = () => `Host: fr.localhost:${site.sb.port}\r\n`;
  const post = (p: string) => `POST ${p} HTTP/1.1\r\n${host()}Content-Length: 1\r\n\r\nx`;
  const get = (p: string, method = 'GET') => `${method} ${p} HTTP/1.1\r\n${host()}\r\n`;
  const last = () => `GET /real HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`;

  /** Two requests on one connection; what the client reads after the first response. */
  async function pipelined(first: string, status: number): Promise<Buffer> {
    const stream = await rawExchange(site.sb.port, first + last());
    assert.ok(!stream.includes('X-Forged') && !stream.includes('forged'), `the tenant's bytes reached the client as a response: ${stream.toString('latin1')}`);
    const { res, rest } = firstResponse(stream, true);
    assert.equal(res.status, status, stream.toString('latin1'));
    return rest;
  }

  /** Whatever follows on the connection is the real second response, or nothing (closed). */
  function realOrNothing(rest: Buffer): void {
    if (rest.length === 0) return;
    const next = firstResponse(rest, false);
    assert.equal(next.res.status, 200, rest.toString('latin1'));
    assert.equal(next.res.body.toString(), 'real');
    assert.equal(next.rest.length, 0, `bytes after the second response: ${next.rest.toString('latin1')}`);
  }

  test('a 204 or 304 with a body from the app: the body is dropped and the kept connection closed, so no tenant byte reads as the next response', async () => {
    for (const [first, status] of [[post('/lent204'), 204], [post('/lent304'), 304], [get('/carried204'), 204], [get('/carried304'), 304]] as const) {
      const rest = await pipelined(first, status);
      assert.equal(rest.length, 0, `the connection was kept after a response that broke its framing: ${rest.toString('latin1')}`);
    }
    for (const p of ['/lent204', '/lent304', '/carried204', '/carried304']) assertCameOn(site, 'fr', p, via);
    assert.match(site.errorLog(), /LG00057: lodge: the app sent a body with status 204/);
    // The app serves on, on a fresh connection.
    const r = await site.get('fr', '/real');
    assert.equal(r.text, 'real');
  });

  test('HEAD: the body the app sends anyway is dropped and the same connection serves the next request', async () => {
    realOrNothing(await pipelined(get('/any', 'HEAD'), 200));
    const rest = await pipelined(get('/any', 'HEAD'), 200);
    assert.ok(rest.length > 0, 'a HEAD answered with a body is ordinary: the connection is kept');
    realOrNothing(rest);
    assertCameOn(site, 'fr', '/any', via);
  });

  test('more body than its Content-Length: the client never reads the excess as a response', async () => {
    for (const first of [post('/long'), get('/long')]) {
      const stream = await rawExchange(site.sb.port, first + last());
      assert.ok(!stream.includes('X-Forged') && !stream.includes('forged'), stream.toString('latin1'));
      assertCameOn(site, 'fr', '/long', via);
    }
    // Its response was whole, END included: the worker goes back (on either path) and is not stopped.
    assert.doesNotMatch(site.lodgedLog(), /closed a connection from Apache mid-request/);
  });
});
