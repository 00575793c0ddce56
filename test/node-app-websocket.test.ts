import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { wsConnect } from './helpers/ws-client';
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

const connect = (site: Site, path: string) => wsConnect(site, 'ws', path);

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
