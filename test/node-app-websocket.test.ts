import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import WebSocket from 'ws';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { tenantModules } from './helpers/node-modules';

// A WebSocket server as tenant code (the `ws` package from the tenant's own node_modules):
// the handshake reaches the app's 'upgrade' handler through Apache and mod_lodge's tunnel
// (lodged lends the worker, the tunnel runs on its socket), both directions stream, and
// either side's close ends it cleanly; the worker then serves plain requests again.

const APP = `
const http = require('node:http');
const { WebSocketServer } = require('ws');
const server = http.createServer((req, res) => res.end('plain ' + process.pid));
const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  ws.send(JSON.stringify({ hello: req.url, from: req.socket.remoteAddress, xff: req.headers['x-forwarded-for'] }));
  ws.on('message', (data, binary) => {
    if (!binary && data.toString() === 'bye') return ws.close(4000, 'server says bye');
    ws.send(data, { binary });
  });
});
server.listen(process.env.PORT || 8080);
`;

/** A client through Apache, open; its messages queued from the first (the app greets at once). */
async function connect(site: Site, path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${site.sb.port}${path}`, { headers: { Host: `ws.localhost:${site.sb.port}` } });
  const queue: Array<{ data: Buffer; binary: boolean }> = [];
  const waiting: Array<(m: { data: Buffer; binary: boolean }) => void> = [];
  ws.on('message', (data, binary) => {
    const m = { data: data as Buffer, binary };
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  inbox.set(ws, { queue, waiting });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`answered ${res.statusCode} instead of 101`)));
  });
  return ws;
}

/** p, or a failure naming what never came (a safety net, not a timing). */
const within = <T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} never came`)), ms).unref())]);

const inbox = new WeakMap<WebSocket, { queue: Array<{ data: Buffer; binary: boolean }>; waiting: Array<(m: { data: Buffer; binary: boolean }) => void> }>();

const nextMessage = (ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> => {
  const box = inbox.get(ws)!;
  const m = box.queue.shift();
  return m ? Promise.resolve(m) : new Promise((resolve) => box.waiting.push(resolve));
};

const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ ws: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 1\n', 'server.js': APP, ...tenantModules(['ws']) } }, undefined, apache);
  });
  after(async () => site?.stop());

  test("a ws echo server: the app greets first, echoes text and a 1 MiB binary message, and the client's close ends it", async () => {
    const plain = await site.get('ws', '/');
    assert.match(plain.text, /^plain \d+$/);
    const ws = await connect(site, '/chat?room=1');
    const hello = JSON.parse((await within(nextMessage(ws), 'the greeting')).data.toString());
    assert.deepEqual(hello, { hello: '/chat?room=1', from: '127.0.0.1', xff: '127.0.0.1' });
    ws.send('ping 1');
    const echo = await within(nextMessage(ws), 'the echo');
    assert.equal(echo.data.toString(), 'ping 1');
    assert.equal(echo.binary, false);
    const big = crypto.randomBytes(1024 * 1024);
    ws.send(big);
    const back = await within(nextMessage(ws), 'the binary echo');
    assert.equal(back.binary, true);
    assert.ok(back.data.equals(big), 'the 1 MiB message came back whole');
    const end = closed(ws);
    ws.close(1000, 'client done');
    assert.equal((await within(end, 'the close')).code, 1000);
    // The same (only) worker serves plain requests again.
    await eventually(async () => (await site.get('ws', '/')).text === plain.text, 'the worker is free again');
  });

  test("the server's close ends the tunnel with its code and reason; the next handshake works", async () => {
    const ws = await connect(site, '/');
    await within(nextMessage(ws), 'the greeting');
    const end = closed(ws);
    ws.send('bye');
    assert.deepEqual(await within(end, "the server's close"), { code: 4000, reason: 'server says bye' });
    const again = await connect(site, '/again');
    assert.equal(JSON.parse((await within(nextMessage(again), 'the second greeting')).data.toString()).hello, '/again');
    const end2 = closed(again);
    again.close();
    await within(end2, 'the second close');
    assert.equal((await site.get('ws', '/')).status, 200);
  });
});
