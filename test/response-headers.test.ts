import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, startSite } from './helpers/site';
import { FRAMES_PY, assertCameOn, firstResponse, forEachApacheAndPath, rawExchange, untilOnPath } from './helpers/raw';

// The app's status and headers are hostile input to the Apache child: bounded in
// count and size (before they are buffered), RFC 9110 in their characters, and never
// about the connection (hop-by-hop headers are the client connection's, not the app's).
// The app writes its frames itself (serve_raw); POST: on lodged's path the worker is
// lent, so mod_lodge reads them straight; straight to the app (lodged.json direct)
// they come on mod_lodge's own connection to the app's socket.
const APP = `${FRAMES_PY}
ROUTES = {
    "/hundred": [(b"X-N%d" % i, b"v") for i in range(100)],
    "/many": [(b"X-N%d" % i, b"v") for i in range(101)],
    "/long-field": [(b"X-Long", b"v" * 9000)],
    "/control": [(b"X-Bad", b"a\\x01b")],
    "/delete": [(b"X-Bad", b"a\\x7fb")],
    "/bad-name": [(b"X-Bad\\x80", b"v")],
    "/obs-text": [(b"X-Obs", b"caf\\xe9\\tand more"), (b"X-Padded", b"  padded \\t")],
    "/hop": [(b"Connection", b"X-Secret, x-other"), (b"X-Secret", b"1"), (b"X-Other", b"2"),
             (b"TE", b"trailers"), (b"Trailer", b"X-T"), (b"Proxy-Connection", b"keep-alive"),
             (b"Upgrade", b"h2c"), (b"Keep-Alive", b"timeout=99"), (b"Transfer-Encoding", b"gzip"),
             (b"X-Kept", b"yes")],
}
def respond(path):
    if path == "/huge-head":
        # A HEAD frame that says 16 MiB and sends a little: refused from its length.
        send(struct.pack(">BBHI", HEAD, 0, 0, 16 << 20) + struct.pack(">H", 200) + pairs([(b"a", b"")] * 10))
        time.sleep(3600)
    if path == "/huge-error":
        # The same for an ERROR frame: 1 MiB announced, a status and a few bytes sent.
        send(struct.pack(">BBHIHH", 0x13, 0, 0, 1 << 20, 500, 0) + b"why")
        time.sleep(3600)
    return head(200, ROUTES.get(path, [(b"Content-Type", b"text/plain")])), frame(DATA, b"body"), frame(END)
def application(environ, start_response):
    serve_raw(respond, environ)
`;

// An ordinary app, through the runtime, with more headers than mod_lodge takes: the
// runtime sends its whole response (straight to the app: and closes the connection)
// before mod_lodge has read the HEAD it refuses.
const MANY_HEADERS = `${FRAMES_PY}
def application(environ, start_response):
    came_on(environ["PATH_INFO"])
    n = 101 if environ["PATH_INFO"] == "/many" else 1
    start_response("200 OK", [("X-N%d" % i, "v") for i in range(n)])
    return [str(os.getpid()).encode()]
`;

forEachApacheAndPath((apache, via) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        rh: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 5\n', 'app.py': APP },
        ok: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': MANY_HEADERS },
      },
      via.lodged,
      apache,
    );
    for (const tenant of ['rh', 'ok']) await untilOnPath(site, tenant, '/warm', via, () => answer('/warm', tenant, false));
  });
  after(async () => site?.stop());

  /** The app's answer to a POST for `p`, after checking it took the path under test. */
  async function answer(p: string, tenant = 'rh', check = true) {
    const stream = await rawExchange(site.sb.port, `POST ${p} HTTP/1.1\r\nHost: ${tenant}.localhost:${site.sb.port}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`);
    if (check) assertCameOn(site, tenant, p, via);
    return { ...firstResponse(stream, false).res, raw: stream.toString('latin1') };
  }
  /** The app serves on: a 200 for /fine, by whichever path. */
  const fine = async () => assert.equal((await answer('/fine', 'rh', false)).status, 200);
  const header = (r: { headers: Array<[string, string]> }, name: string) => r.headers.filter(([n]) => n === name).map(([, v]) => v);

  test('response headers are capped in count and size: 502, with a numbered log line, and the app serves on', async () => {
    assert.equal((await answer('/hundred')).status, 200, 'a hundred headers pass');
    assert.equal((await answer('/many')).status, 502);
    assert.match(site.errorLog(), /LG00059: lodge: the app sent more than 100 response headers/);
    assert.equal((await answer('/long-field')).status, 502);
    assert.match(site.errorLog(), /LG00060: lodge: the app sent response header X-Long of 9008 bytes/);
    assert.equal((await answer('/fine')).status, 200);
  });

  test('a HEAD or ERROR frame longer than its cap is refused from its length, before its bytes are waited for', async () => {
    // Waiting for the announced bytes would end in LodgeTimeout's 504.
    // Each costs its worker (BROKEN): the next request may find none ready, and lodged
    // serves it until a new one is.
    assert.equal((await answer('/huge-head')).status, 502);
    assert.match(site.errorLog(), /LG00058: lodge: the app's worker sent a HEAD frame of 16777216 bytes/);
    await untilOnPath(site, 'rh', '/fine', via, fine);
    assert.equal((await answer('/huge-error')).status, 502);
    assert.match(site.errorLog(), /LG00062: lodge: the app's worker sent an ERROR frame of 1048576 bytes/);
    await untilOnPath(site, 'rh', '/fine', via, fine);
  });

  test('header names are tokens and values RFC 9110 field values: a control character or DEL is a 502', async () => {
    assert.equal((await answer('/control')).status, 502);
    assert.match(site.errorLog(), /LG00061: lodge: the app sent response header X-Bad with a control character/);
    assert.equal((await answer('/delete')).status, 502);
    assert.equal((await answer('/bad-name')).status, 502);
    const r = await answer('/obs-text');
    assert.equal(r.status, 200);
    assert.ok(r.raw.includes('\r\nX-Obs: caf\xe9\tand more\r\n'), r.raw);
    assert.ok(r.raw.includes('\r\nX-Padded: padded\r\n'), `surrounding whitespace trimmed: ${r.raw}`);
  });

  test('hop-by-hop headers, and those the app\'s Connection header names, never reach the client', async () => {
    const r = await answer('/hop');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'body');
    for (const name of ['x-secret', 'x-other', 'te', 'trailer', 'proxy-connection', 'upgrade']) {
      assert.deepEqual(header(r, name), [], `${name} reached the client: ${r.raw}`);
    }
    assert.ok(!/timeout=99/.test(r.raw), `the app's Keep-Alive reached the client: ${r.raw}`);
    assert.ok(!/x-secret/i.test(header(r, 'connection').join(',')), r.raw);
    assert.ok(!/gzip/.test(header(r, 'transfer-encoding').join(',')), r.raw);
    assert.deepEqual(header(r, 'x-kept'), ['yes']);
  });

  test('an ordinary app with 101 headers: 502, and the same worker serves on (its whole response was out before mod_lodge refused it)', async () => {
    const pid = (await answer('/pid', 'ok')).body.toString();
    assert.equal((await answer('/many', 'ok')).status, 502);
    const after = await answer('/pid', 'ok', false);
    assert.equal(after.status, 200, after.raw);
    assert.equal(after.body.toString(), pid, 'the worker was not stopped for a response it sent whole');
    assert.doesNotMatch(site.lodgedLog(), /closed a connection from Apache mid-request/);
  });
});
