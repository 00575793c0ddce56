import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { checkConfig } from '../sidecar/src/config/load';
import { FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import { isStatusApp } from '../sidecar/src/protocol/schemas';
import { Registry } from '../sidecar/src/pool/registry';
import { listen } from '../sidecar/src/server/listener';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { StatusWeb } from '../sidecar/src/status/web';
import { originMatches } from '../sidecar/src/status/web-answer';
import { FeedMessage } from '../sidecar/src/status/ws-feed';
import { FakeApache, FakeResponse, decodeHead } from './helpers/fake-apache';
import { FakeApacheHttpShim } from './helpers/fake-apache-http-shim';
import { FakeStatusSource, rootOf } from './helpers/fake-status-source';

// lodged's side of the host status location, with FakeApache speaking mod_lodge's
// frames on lodged's own socket (the listener and ApacheConn are the real ones) and a
// FakeApacheHttpShim letting the real `ws` client through the tunnel frames.

let dir: string;
let socketPath: string;
let server: net.Server;
let registry: Registry;
let web: StatusWeb;
let source: FakeStatusSource;
let shim: FakeApacheHttpShim;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-status-web-'));
  socketPath = path.join(dir, 'lodged.sock');
  registry = new Registry(checkConfig({}, 'test'), true);
  source = new FakeStatusSource();
  web = new StatusWeb(source, undefined, 100);
  server = await listen({ socketPath, allowUids: [] }, registry, web);
  shim = new FakeApacheHttpShim(socketPath);
  await shim.start();
});

after(async () => {
  await shim.stop();
  web.close();
  registry.close();
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function once(r: Parameters<FakeApache['request']>[0]): Promise<FakeResponse> {
  const a = await FakeApache.connect(socketPath);
  try {
    return await a.request(r);
  } finally {
    a.close();
  }
}

/** The page's token and the session cookie it set: what the page's script posts back. */
async function pageSession(user = 'admin'): Promise<{ token: string; cookie: string }> {
  const page = await once({ user });
  const token = /<meta name="lodge-token" content="([^"]+)">/.exec(page.body.toString())![1];
  const cookie = page.header('Set-Cookie')!.split(';')[0];
  return { token, cookie };
}

/** A browser's handshake headers, from this host's page. */
const HANDSHAKE = { origin: 'http://status.localhost', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };

/** The rest of an open tunnel: DATA frames up to lodged's END. */
async function untilEnd(a: FakeApache): Promise<void> {
  for (;;) {
    const f = await a.next();
    if (f.type === FrameType.END) return;
    assert.equal(f.type, FrameType.DATA);
  }
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

test('an APP of kind=status is told apart from an app\'s APP on its pair headers', () => {
  assert.equal(isStatusApp(encodeFrame(FrameType.APP, encodePairs([['kind', 'status']]))), true);
  assert.equal(isStatusApp(encodeFrame(FrameType.APP, encodePairs([['root', '/srv/a'], ['kind', 'wsgi'], ['entry', 'app.py']]))), false);
  assert.equal(isStatusApp(encodeFrame(FrameType.APP, encodePairs([['kinds', 'status']]))), false);
  assert.equal(isStatusApp(encodeFrame(FrameType.APP, encodePairs([['kind', 'statusx']]))), false);
  // Cut off inside the pair: no status APP (and no throw).
  assert.equal(isStatusApp(encodeFrame(FrameType.APP, encodePairs([['kind', 'status']])).subarray(0, 16)), false);
});

test('GET of the location serves the one HTML page: no external assets, nonce CSP, no-store, a session cookie', async () => {
  const r = await once({ user: 'admin' });
  assert.equal(r.status, 200);
  assert.equal(r.header('Content-Type'), 'text/html; charset=utf-8');
  assert.equal(r.header('Cache-Control'), 'no-store');
  assert.equal(r.header('X-Content-Type-Options'), 'nosniff');
  const csp = r.header('Content-Security-Policy')!;
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /connect-src 'self' ws: wss:/);
  const html = r.body.toString();
  assert.ok(html.includes(`<script nonce="${nonce}">`), 'the inline script carries the nonce');
  assert.ok(html.includes(`<style nonce="${nonce}">`), 'the inline style carries the nonce');
  // The one href is the empty icon, which keeps browsers from asking for /favicon.ico.
  assert.deepEqual(html.match(/\b(src|href)="[^"]*"/g), ['href="data:,"'], 'nothing loaded from anywhere');
  assert.match(html, /id="lodge-initial">\{"version":1/);
  assert.ok(html.includes(rootOf(2000)), 'the first snapshot is in the page');
  assert.match(r.header('Set-Cookie')!, /^lodge_status_session=[0-9a-f]{32}; Path=\/lodge-status; HttpOnly; SameSite=Strict$/);
  // A browser that has the cookie is not given another.
  const again = await once({ user: 'admin', headers: { cookie: r.header('Set-Cookie')!.split(';')[0] } });
  assert.equal(again.header('Set-Cookie'), undefined);
});

test('the page embeds the snapshot so that no tenant text can end its script', async () => {
  source.events = [{ at: Date.now(), kind: 'refusal', message: '</script><script>alert(1)</script>' }];
  const html = (await once({})).body.toString();
  assert.equal(html.split('</script>').length - 1, 2, 'only the two scripts of the page end');
  assert.ok(html.includes('\\u003c/script>\\u003cscript>alert(1)'));
});

test('?json serves the snapshot, valid against statusSnapshot', async () => {
  const r = await once({ query: 'json' });
  assert.equal(r.status, 200);
  assert.equal(r.header('Content-Type'), 'application/json');
  assert.equal(r.header('Cache-Control'), 'no-store');
  const snap = statusSnapshot.parse(JSON.parse(r.body.toString()));
  assert.deepEqual(snap.tenants.map((t) => t.uid), [2000, 2001, 2002, 2003, 2004]);
});

test('?metrics and /metrics serve the Prometheus text', async () => {
  for (const r of [await once({ query: 'metrics' }), await once({ path: '/metrics' })]) {
    assert.equal(r.status, 200);
    assert.equal(r.header('Content-Type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(r.body.toString(), /^lodge_up 1$/m);
  }
});

test('other paths are 404, other methods 405', async () => {
  assert.equal((await once({ path: '/nothing' })).status, 404);
  assert.equal((await once({ method: 'DELETE' })).status, 405);
  assert.equal((await once({ path: '/restart' })).status, 405, 'an action by GET');
  assert.equal((await once({ path: '/ws' })).status, 426, 'the WebSocket without Upgrade');
});

test('a status APP with pairs of an app (root=) is refused with an ERROR; the connection serves on', async () => {
  const a = await FakeApache.connect(socketPath);
  try {
    const r = await a.request({ appPairs: [['root', '/srv/x']] });
    assert.equal(r.status, 502);
    assert.match(r.error!, /APP \(status\): unknown pair 'root'/);
    assert.equal((await a.request({ query: 'json' })).status, 200);
  } finally {
    a.close();
  }
});

test('a body over 64 KiB is refused with 413', async () => {
  const r = await once({ method: 'POST', path: '/restart', body: Buffer.alloc(65 * 1024, 0x61), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 413);
});

test('a POST action without a token, with a bad one, or with one of another session is refused with 403', async () => {
  const { token, cookie } = await pageSession();
  const other = await pageSession();
  const root = rootOf(2000);
  const tries: Array<{ headers: Record<string, string>; body: string; user?: string }> = [
    { headers: { cookie }, body: form({ root }) },
    { headers: { cookie }, body: form({ root, token: 'A'.repeat(token.length) }) },
    { headers: { cookie: other.cookie }, body: form({ root, token }) },
    { headers: {}, body: form({ root, token }) },
    // Same session, another Apache user: the token is bound to REMOTE_USER.
    { headers: { cookie }, body: form({ root, token }), user: 'mallory' },
  ];
  for (const t of tries) {
    const r = await once({ method: 'POST', path: '/restart', user: t.user ?? 'admin', body: t.body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...t.headers } });
    assert.equal(r.status, 403, JSON.stringify(t));
  }
  // The right token from a foreign page (its Origin) is refused too.
  const foreign = await once({ method: 'POST', path: '/restart', user: 'admin', body: form({ root, token }), headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(foreign.status, 403);
  assert.deepEqual(source.restarted, []);
});

test('a POST action with the page\'s token restarts the app (new worker pid) and stops a worker', async () => {
  const { token, cookie } = await pageSession();
  const root = rootOf(2001);
  const before = source.pidOf(root)!;
  const headers = { cookie, origin: 'http://status.localhost', 'content-type': 'application/x-www-form-urlencoded' };
  const r = await once({ method: 'POST', path: '/restart', user: 'admin', headers, body: form({ root, token }) });
  assert.equal(r.status, 200, r.body.toString());
  assert.deepEqual(JSON.parse(r.body.toString()), { ok: true, restarted: root });
  const snap = statusSnapshot.parse(JSON.parse((await once({ query: 'json' })).body.toString()));
  const after = snap.tenants.find((t) => t.uid === 2001)!.apps[0].workers[0].pid;
  assert.notEqual(after, before);
  const missing = await once({ method: 'POST', path: '/restart', user: 'admin', headers, body: form({ root: '/srv/none', token }) });
  assert.equal(missing.status, 404);
  const stop = await once({ method: 'POST', path: '/stop', user: 'admin', headers, body: form({ pid: String(after), token }) });
  assert.equal(stop.status, 200);
  assert.deepEqual(source.stopped, [after]);
  const bad = await once({ method: 'POST', path: '/stop', user: 'admin', headers, body: form({ pid: 'x', token }) });
  assert.equal(bad.status, 400);
});

test('Origin must name the host the request came to', () => {
  assert.equal(originMatches('http://status.localhost', 'status.localhost', false), true);
  assert.equal(originMatches('http://Status.localhost:80', 'status.localhost', false), true);
  assert.equal(originMatches('https://h.example', 'h.example:443', true), true);
  assert.equal(originMatches('http://h.example', 'h.example', true), false, 'scheme differs');
  assert.equal(originMatches('http://h.example:8080', 'h.example', false), false);
  assert.equal(originMatches('http://evil.example', 'h.example', false), false);
  assert.equal(originMatches('null', 'h.example', false), false);
  assert.equal(originMatches(undefined, 'h.example', false), false);
});

test('a WebSocket handshake from a foreign Origin gets 403 before any upgrade', async () => {
  const a = await FakeApache.connect(socketPath);
  try {
    const r = await a.request({ path: '/ws', tunnel: true, headers: { ...HANDSHAKE, origin: 'http://evil.example' } });
    assert.equal(r.status, 403);
    const { origin: _, ...noOrigin } = HANDSHAKE;
    const none = await a.request({ path: '/ws', tunnel: true, headers: noOrigin });
    assert.equal(none.status, 403, 'no Origin at all');
    // The connection serves on after a refused tunnel (no BODY_END follows one).
    assert.equal((await a.request({ query: 'json' })).status, 200);
  } finally {
    a.close();
  }
  // The real client through the shim: refused, never opened.
  const client = new WebSocket(`ws://127.0.0.1:${shim.port}/lodge-status/ws`, { origin: 'http://evil.example' });
  const status = await new Promise<number>((resolve, reject) => {
    client.on('unexpected-response', (_req, res) => resolve(res.statusCode!));
    client.on('open', () => reject(new Error('opened')));
    client.on('error', () => {});
  });
  assert.equal(status, 403);
});

test('the WebSocket opens over the tunnel frames: a 101 HEAD, then live snapshots with growing counters', async () => {
  const client = new WebSocket(`ws://127.0.0.1:${shim.port}/lodge-status/ws`, { origin: `http://127.0.0.1:${shim.port}` });
  const messages: FeedMessage[] = [];
  await new Promise<void>((resolve, reject) => {
    client.on('message', (d) => {
      messages.push(JSON.parse(d.toString()));
      if (messages.length === 3) resolve();
    });
    client.on('error', reject);
  });
  const [first, , third] = messages;
  assert.equal(first.full, true);
  assert.deepEqual(first.tenants.map((t) => t.uid), [2000, 2001, 2002, 2003, 2004]);
  assert.ok(first.events, 'the first message has the events');
  assert.equal(third.full, false);
  // Only the tenants whose status changed: the busy ones, not the idle ones.
  const serving = [2000, 2001, 2002, 2003, 2004].filter((uid) => source.pidOf(rootOf(uid)) !== undefined);
  assert.ok(serving.length >= 2);
  assert.deepEqual(third.tenants.map((t) => t.uid), serving);
  const served = (m: FeedMessage) => m.tenants.find((t) => t.uid === 2000)!.apps[0].requests.total;
  assert.ok(served(third) > served(first), `${served(third)} > ${served(first)}`);
  const closed = new Promise((r) => client.on('close', r));
  client.close();
  await closed;
});

test('a tunnel on lodged\'s socket: HEAD 101 with Upgrade, DATA frames of WebSocket bytes, BODY_END ends it with END; the connection serves on', async () => {
  const a = await FakeApache.connect(socketPath);
  try {
    a.send({ path: '/ws', tunnel: true, headers: HANDSHAKE });
    const head = await a.next();
    assert.equal(head.type, FrameType.HEAD);
    const { status, headers } = decodeHead(head.payload);
    assert.equal(status, 101);
    assert.deepEqual(headers.slice(0, 3), [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=']]);
    const data = await a.next();
    assert.equal(data.type, FrameType.DATA);
    assert.equal(data.payload[0], 0x81, 'a WebSocket text frame (FIN, opcode 1)');
    // The client leaves: BODY_END; lodged closes the WebSocket and sends END.
    a.endBody();
    await untilEnd(a);
    assert.equal((await a.request({ query: 'json' })).status, 200);
  } finally {
    a.close();
  }
});

test('a handshake that ws refuses (bad Sec-WebSocket-Key) is an ordinary 400 response; the connection serves on', async () => {
  const a = await FakeApache.connect(socketPath);
  try {
    const r = await a.request({ path: '/ws', tunnel: true, headers: { ...HANDSHAKE, 'sec-websocket-key': 'short' } });
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /Sec-WebSocket-Key/);
    assert.equal((await a.request({ query: 'json' })).status, 200);
  } finally {
    a.close();
  }
});

test('lodged closing the WebSocket ends the tunnel with END; the next request on the connection needs no BODY_END first', async () => {
  const a = await FakeApache.connect(socketPath);
  try {
    a.send({ path: '/ws', tunnel: true, headers: HANDSHAKE });
    assert.equal(decodeHead((await a.next()).payload).status, 101);
    assert.equal((await a.next()).type, FrameType.DATA);
    web.feed.close();
    await untilEnd(a);
    assert.equal((await a.request({ query: 'json' })).status, 200);
  } finally {
    a.close();
  }
});
