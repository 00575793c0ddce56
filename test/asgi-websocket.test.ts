import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { WsClient, wsConnect } from './helpers/ws-client';

// A FastAPI WebSocket endpoint as tenant code, through Apache and mod_lodge's tunnel
// (lodged lends the worker): Lodge's runtime answers the handshake when the app accepts,
// and does the framing itself (masking, fragments, ping/pong, the close handshake, bounds
// on what a client may send). A real client (the `ws` package) and a raw one.

const MAIN = `
import asyncio, os
from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse

HERE = os.path.dirname(os.path.abspath(__file__))
app = FastAPI()

def note(name, text):
    with open(os.path.join(HERE, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(HERE, name + ".tmp"), os.path.join(HERE, name))

@app.get("/")
async def index():
    return PlainTextResponse("plain %d" % os.getpid())

@app.websocket("/chat")
async def chat(ws: WebSocket, room: str = ""):
    offered = ws.scope["subprotocols"]
    await ws.accept(subprotocol=offered[0] if offered else None)
    await ws.send_json({"path": ws.url.path, "room": room, "client": ws.client.host, "scheme": ws.scope["scheme"], "offered": offered})
    while True:
        m = await ws.receive()
        if m["type"] == "websocket.disconnect":
            note("disconnect", "%s %s" % (m["code"], m.get("reason", "")))
            return
        if m.get("text") == "bye":
            await ws.close(4000, "server says bye")
            return
        if m.get("text") == "raise":
            raise RuntimeError("websocket handler broke 8821")
        if m.get("text") is not None:
            await ws.send_text("echo " + m["text"])
        else:
            await ws.send_bytes(m["bytes"])

@app.websocket("/push")
async def push(ws: WebSocket):
    # Sends only, never receives: it learns the client left from its next send.
    await ws.accept()
    n = 0
    try:
        while True:
            await ws.send_text("tick %d" % n)
            n += 1
            await asyncio.sleep(0.05)
    except OSError as e:
        note("push-gone", "%s after %d ticks" % (type(e).__name__, n))

@app.websocket("/deny")
async def deny(ws: WebSocket):
    await ws.close()
`;

const connect = (site: Site, p: string, protocols: string[] = []) => wsConnect(site, 'wsa', p, protocols);

/** The client's next pong, or a failure naming it (a safety net, not a timing). */
function nextPong(c: WsClient, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    c.ws.once('pong', resolve);
    setTimeout(() => reject(new Error(`${what} never came`)), 20_000).unref();
  });
}

/** A raw handshake on a socket of its own; resolves with the socket after the 101's head. */
function rawHandshake(site: Site, p: string): Promise<{ sock: net.Socket; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(site.sb.port, '127.0.0.1');
    let got = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('connect', () => sock.write(
      `GET ${p} HTTP/1.1\r\nHost: wsa.localhost:${site.sb.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      resolve({ sock, head: got.subarray(0, end).toString('latin1'), rest: got.subarray(end + 4) });
    };
    sock.on('data', onData);
  });
}

/** Everything the server sends until it closes the connection. */
function readToClose(sock: net.Socket, first: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts = [first];
    sock.on('data', (d: Buffer) => parts.push(d));
    sock.on('close', () => resolve(Buffer.concat(parts)));
    setTimeout(() => sock.destroy(), 20_000).unref();
  });
}

forEachApache((apache) => {
  let site: Site;
  let dir: string;
  before(async () => {
    site = await startSite({ wsa: { '.htaccess': 'LodgeApp asgi main.py:app\nLodgeProcesses 1\n', 'main.py': MAIN } }, undefined, apache);
    dir = path.join(site.root, 'wsa');
  });
  after(async () => site?.stop());

  test('the app accepts with a subprotocol, greets, echoes text, a fragmented message and 1 MiB of binary, answers a ping; the client\'s close reaches it', async () => {
    const plain = await site.get('wsa', '/');
    assert.match(plain.text, /^plain \d+$/, plain.text + site.tenantLog('wsa'));
    fs.rmSync(path.join(dir, 'disconnect'), { force: true });
    const c = await connect(site, '/chat?room=7', ['chat.v1', 'chat.v0']);
    assert.equal(c.ws.protocol, 'chat.v1', 'the subprotocol the app chose');
    const hello = JSON.parse((await c.next('the greeting')).data.toString());
    assert.deepEqual(hello, { path: '/chat', room: '7', client: '127.0.0.1', scheme: 'ws', offered: ['chat.v1', 'chat.v0'] });
    c.ws.send('héllo');
    assert.equal((await c.next('the echo')).data.toString(), 'echo héllo');
    // One text message in three frames.
    c.ws.send('frag', { fin: false });
    c.ws.send('men', { fin: false });
    c.ws.send('ted', { fin: true });
    assert.equal((await c.next('the fragmented echo')).data.toString(), 'echo fragmented');
    const big = crypto.randomBytes(1024 * 1024);
    c.ws.send(big);
    const back = await c.next('the binary echo');
    assert.equal(back.binary, true);
    assert.ok(back.data.equals(big), 'the 1 MiB message came back whole');
    const pong = nextPong(c, 'the pong');
    c.ws.ping(Buffer.from('are you there'));
    assert.equal((await pong).toString(), 'are you there');
    c.ws.close(1000, 'client done');
    assert.equal((await c.closed).code, 1000);
    await eventually(() => fs.existsSync(path.join(dir, 'disconnect')), 'the app saw the disconnect');
    assert.equal(fs.readFileSync(path.join(dir, 'disconnect'), 'utf8'), '1000 client done');
    await eventually(async () => (await site.get('wsa', '/')).text === plain.text, 'the one worker serves plain requests again');
  });

  test('the server\'s close ends the tunnel with its code and reason; the next handshake works', async () => {
    const c = await connect(site, '/chat');
    await c.next('the greeting');
    c.ws.send('bye');
    assert.deepEqual(await c.closed, { code: 4000, reason: 'server says bye' });
    const again = await connect(site, '/chat?room=again');
    assert.equal(JSON.parse((await again.next('the second greeting')).data.toString()).room, 'again');
    again.ws.close();
    await again.closed;
    assert.equal((await site.get('wsa', '/')).status, 200);
  });

  test('an app that only sends: a ping is answered meanwhile, and the client\'s close reaches it at its next send; the worker serves on', async () => {
    const plain = await site.get('wsa', '/');
    fs.rmSync(path.join(dir, 'push-gone'), { force: true });
    const c = await connect(site, '/push');
    assert.equal((await c.next('the first tick')).data.toString(), 'tick 0');
    const pong = nextPong(c, 'the pong while the app only sends');
    c.ws.ping(Buffer.from('still there?'));
    assert.equal((await pong).toString(), 'still there?', 'answered by the runtime: the app never calls receive()');
    await c.next('a later tick');
    c.ws.close(1000);
    assert.equal((await c.closed).code, 1000);
    await eventually(() => fs.existsSync(path.join(dir, 'push-gone')), 'the app learned the client left');
    assert.match(fs.readFileSync(path.join(dir, 'push-gone'), 'utf8'), /^ClientGone after \d+ ticks$/);
    assert.doesNotMatch(site.tenantLog('wsa'), /ClientGone/, 'no traceback for it');
    assert.equal((await site.get('wsa', '/')).text, plain.text, 'the same worker, not killed');
  });

  test('a close before accept is a 403; an unknown path is refused; the worker serves on', async () => {
    await assert.rejects(connect(site, '/deny'), (err: Error & { status?: number }) => err.status === 403);
    await assert.rejects(connect(site, '/nowhere'), (err: Error & { status?: number }) => err.status === 403);
    assert.equal((await site.get('wsa', '/')).status, 200);
  });

  test('an exception after accept closes with 1011, the traceback in the tenant log', async () => {
    const c = await connect(site, '/chat');
    await c.next('the greeting');
    c.ws.send('raise');
    assert.equal((await c.closed).code, 1011);
    await eventually(() => /RuntimeError: websocket handler broke 8821/.test(site.tenantLog('wsa')), 'the traceback in the tenant log');
    assert.equal((await site.get('wsa', '/')).status, 200);
  });

  test('an unmasked frame from a client is a protocol error: close 1002, and the connection ends', async () => {
    const { sock, head, rest } = await rawHandshake(site, '/chat');
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /\r\nSec-WebSocket-Accept: /i);
    const all = readToClose(sock, rest);
    sock.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // FIN text "hi", no mask bit
    const got = await all;
    // The greeting (a text frame), then a close frame whose code is 1002.
    const close = got.indexOf(Buffer.from([0x88]));
    assert.ok(close >= 0, `a close frame among ${got.length} bytes`);
    assert.equal(got.readUInt16BE(close + 2), 1002);
    assert.equal((await site.get('wsa', '/')).status, 200);
  });
});
