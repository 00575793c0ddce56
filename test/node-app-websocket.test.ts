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

type Message = { data: Buffer; binary: boolean };

/**
 * A WebSocket client through Apache to the tenant `ws`: every message is queued from the
 * first (the app greets at once, before a test could listen for it).
 */
class Client {
  readonly ws: WebSocket;
  private readonly queue: Message[] = [];
  private readonly waiting: Array<(m: Message) => void> = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(site: Site, path: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${site.sb.port}${path}`, { headers: { Host: `ws.localhost:${site.sb.port}` } });
    this.ws.on('message', (data, binary) => {
      const m = { data: data as Buffer, binary };
      const w = this.waiting.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`the handshake got ${res.statusCode}, not 101`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** The next message, or a failure naming it (a safety net, not a timing). */
  next(what: string): Promise<Message> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      setTimeout(() => reject(new Error(`${what} never came`)), 20_000).unref();
    });
  }
}

async function connect(site: Site, path: string): Promise<Client> {
  const c = new Client(site, path);
  await c.opened;
  return c;
}

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ ws: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 1\n', 'server.js': APP, ...tenantModules(['ws']) } }, undefined, apache);
  });
  after(async () => site?.stop());

  test("a ws echo server: the app greets first, echoes text and a 1 MiB binary message, and the client's close ends it", async () => {
    const plain = await site.get('ws', '/');
    assert.match(plain.text, /^plain \d+$/);
    const c = await connect(site, '/chat?room=1');
    const hello = JSON.parse((await c.next('the greeting')).data.toString());
    assert.deepEqual(hello, { hello: '/chat?room=1', from: '127.0.0.1', xff: '127.0.0.1' });
    c.ws.send('ping 1');
    const echo = await c.next('the echo');
    assert.equal(echo.data.toString(), 'ping 1');
    assert.equal(echo.binary, false);
    const big = crypto.randomBytes(1024 * 1024);
    c.ws.send(big);
    const back = await c.next('the binary echo');
    assert.equal(back.binary, true);
    assert.ok(back.data.equals(big), 'the 1 MiB message came back whole');
    c.ws.close(1000, 'client done');
    assert.equal((await c.closed).code, 1000);
    // The same (only) worker serves plain requests again.
    await eventually(async () => (await site.get('ws', '/')).text === plain.text, 'the worker is free again');
  });

  test("the server's close ends the tunnel with its code and reason; the next handshake works", async () => {
    const c = await connect(site, '/');
    await c.next('the greeting');
    c.ws.send('bye');
    assert.deepEqual(await c.closed, { code: 4000, reason: 'server says bye' });
    const again = await connect(site, '/again');
    assert.equal(JSON.parse((await again.next('the second greeting')).data.toString()).hello, '/again');
    again.ws.close();
    await again.closed;
    assert.equal((await site.get('ws', '/')).status, 200);
  });
});
