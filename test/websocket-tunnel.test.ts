import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import WebSocket from 'ws';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { request } from './helpers/http';
import { FakeLodged } from './helpers/fake-lodged';
import { APP_TUNNEL } from '../sidecar/src/protocol/frames';
import type { ApacheVersion } from '../sidecar/src/sandbox/sandbox';

const APP = 'def application(e, s):\n    s("200 OK", [])\n    return [b"up"]\n';

/*
 * Two request slots in all, so that a tunnel whose end left its Apache child (or
 * thread) busy would soon leave nothing to serve the next request.
 */
const fewWorkers = (apache: ApacheVersion): string[] =>
  apache === '2.4'
    ? ['StartServers 1', 'ThreadsPerChild 2', 'MaxRequestWorkers 2', 'MinSpareThreads 1', 'MaxSpareThreads 2']
    : ['StartServers 1', 'MaxClients 2', 'MinSpareServers 1', 'MaxSpareServers 1'];

/*
 * Debian's 2.4 loads mod_reqtimeout, whose connection filter would end a read
 * that waits past its body time: a tunnel quiet for longer must not be cut by it.
 */
const readTimeout = (apache: ApacheVersion): string[] =>
  apache === '2.4' ? ['LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so', 'RequestReadTimeout header=20 body=1'] : [];

const upgradeHeaders = (): Record<string, string> => ({
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
  'Sec-WebSocket-Version': '13',
});

/** A WebSocket client to host's path through Apache, open. */
async function connect(site: Site, host: string, path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${site.sb.port}${path}`, { headers: { Host: `${host}:${site.sb.port}` } });
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

const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

/** Everything Apache sends on a raw connection for one upgrade request, up to its close. */
function rawUpgrade(site: Site, host: string, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(site.sb.port, '127.0.0.1');
    const parts: Buffer[] = [];
    const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}:${site.sb.port}`, ...Object.entries(upgradeHeaders()).map(([k, v]) => `${k}: ${v}`)];
    s.on('connect', () => s.write(lines.join('\r\n') + '\r\n\r\n'));
    s.on('data', (d) => parts.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(parts)));
    s.setTimeout(60_000, () => s.destroy(new Error('the tunnel never closed')));
  });
}

forEachApache((apache) => {
  let site: Site;
  let fake: FakeLodged;
  before(async () => {
    site = await startSite(
      {
        ws: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP },
        idle: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 2\n', 'app.py': APP },
      },
      undefined,
      apache,
      { daemon: 'sandbox', hostDirectives: [...fewWorkers(apache), ...readTimeout(apache), '<Location /lodge-status>', '  SetHandler lodge-status', '</Location>'] },
    );
    await site.sb.stopLodged();
    fake = await FakeLodged.listen(site.sb.socket);
  });
  after(async () => {
    await fake?.close();
    await site?.stop();
  });

  test('a WebSocket through the status location: lodged is asked with kind=status and the TUNNEL flag, no BODY_END before its 101, the headers as sent', async () => {
    const ws = await connect(site, 'localhost', '/lodge-status/live');
    ws.send('ping');
    const [echo] = await new Promise<[WebSocket.RawData]>((resolve) => ws.once('message', (d) => resolve([d])));
    assert.equal(echo.toString(), 'ping');
    const seen = fake.last('/lodge-status/live');
    assert.ok(seen, 'lodged saw the upgrade');
    assert.equal(seen.flags & APP_TUNNEL, APP_TUNNEL);
    assert.equal(seen.app.get('kind'), 'status');
    assert.equal(seen.app.has('root'), false);
    assert.equal(seen.req.get('SCRIPT_NAME'), '/lodge-status');
    assert.equal(seen.req.get('PATH_INFO'), '/live');
    assert.equal(seen.req.get('HTTP_UPGRADE'), 'websocket');
    assert.match(seen.req.get('HTTP_CONNECTION') ?? '', /upgrade/i);
    assert.equal(seen.req.get('HTTP_SEC_WEBSOCKET_VERSION'), '13');
    assert.ok(seen.req.get('HTTP_SEC_WEBSOCKET_KEY'));
    assert.equal(seen.events[0], 'HEAD 101', 'nothing came from mod_lodge before the 101');
    assert.deepEqual(seen.events.slice(1, 2), ['BODY'], 'the message went as a BODY frame');
    const done = closed(ws);
    ws.close();
    await done;
  });

  test("a tunnel quiet for longer than the server's request read timeout stays open", async () => {
    const ws = await connect(site, 'ws.localhost', '/quiet-while');
    const echo = (m: string) =>
      within(
        new Promise<string>((resolve) => {
          ws.once('message', (d) => resolve(d.toString()));
          ws.send(m);
        }),
        `the echo of '${m}'`,
      );
    assert.equal(await echo('before'), 'before');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(await echo('after'), 'after');
    const done = closed(ws);
    ws.close();
    await within(done, 'the close');
  });

  test("100 messages each way, then a 1 MiB message, through an app's tunnel, in order and intact", async () => {
    const ws = await connect(site, 'ws.localhost', '/chat');
    const got: string[] = [];
    let big: Buffer | undefined;
    ws.on('message', (d, isBinary) => {
      if (isBinary) big = d as Buffer;
      else got.push(d.toString());
    });
    for (let i = 0; i < 100; i++) ws.send(`message ${i}`);
    await eventually(() => got.length === 100, '100 echoes');
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `message ${i}`));
    const payload = crypto.randomBytes(1024 * 1024);
    ws.send(payload, { binary: true });
    await eventually(() => big !== undefined, 'the 1 MiB echo', 30_000);
    assert.ok(big!.equals(payload), 'the 1 MiB message came back intact');
    const seen = fake.last('/chat');
    assert.equal(seen?.app.get('kind'), 'wsgi', 'an app is a backend like any other');
    assert.equal((seen!.flags & APP_TUNNEL) !== 0, true);
    const done = closed(ws);
    ws.close();
    await done;
  });

  test('the backend closes: the client gets its close frame and the connection ends; mod_lodge ends the input with BODY_END and keeps its connection to lodged', async () => {
    const ws = await connect(site, 'ws.localhost', '/server-closes');
    const done = closed(ws);
    ws.send('bye');
    const { code, reason } = await done;
    assert.equal(code, 1000);
    assert.equal(reason, 'bye');
    const seen = fake.last('/server-closes')!;
    await eventually(() => seen.events.includes('BODY_END'), 'BODY_END after the backend END');
    assert.ok(seen.events.indexOf('END') < seen.events.indexOf('BODY_END'), `END, then BODY_END: ${seen.events}`);
    assert.equal(seen.events.includes('closed'), false, 'the connection to lodged stays open');
    assert.deepEqual(fake.faults, []);
  });

  test('the client closes cleanly: lodged sees its close frame, then BODY_END', async () => {
    const ws = await connect(site, 'ws.localhost', '/client-closes');
    const done = closed(ws);
    ws.close(1000, 'done');
    assert.equal((await done).code, 1000);
    const seen = fake.last('/client-closes')!;
    await eventually(() => seen.events.includes('BODY_END'), 'BODY_END');
    assert.ok(seen.events.includes('BODY'), 'the close frame went as BODY');
  });

  test('the client vanishes mid-tunnel: mod_lodge sends BODY_END, lodged answers END, and the connection stays usable', async () => {
    const ws = await connect(site, 'ws.localhost', '/client-vanishes');
    ws.send('x');
    await new Promise((resolve) => ws.once('message', resolve));
    ws.terminate();
    const seen = fake.last('/client-vanishes')!;
    await eventually(() => seen.events.includes('BODY_END') && seen.events.includes('END'), 'BODY_END, then END');
    assert.ok(seen.events.indexOf('BODY_END') < seen.events.indexOf('END'), `BODY_END, then END: ${seen.events}`);
    assert.deepEqual(fake.faults, []);
  });

  test('on a worker lodged lends (GRANT) the same tunnel runs on its socket, and the worker goes back with RELEASE DONE', async () => {
    const ws = await connect(site, 'ws.localhost', '/lent');
    const echo = within(new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString()))), 'the echo');
    ws.send('ping');
    assert.equal(await echo, 'ping');
    const done = closed(ws);
    ws.send('bye');
    assert.equal((await within(done, 'the close')).code, 1000);
    const seen = fake.last('/lent')!;
    await eventually(() => seen.events.includes('RELEASE 0'), 'RELEASE DONE');
    assert.deepEqual(seen.events.filter((e) => !e.startsWith('BODY') || e === 'BODY_END'), ['GRANT', 'HEAD 101', 'END', 'BODY_END', 'RELEASE 0']);
    assert.deepEqual(fake.faults, []);
  });

  test("after the 101 the client gets the backend's bytes and nothing else (no body, no last chunk), then the connection closes", async () => {
    const all = (await rawUpgrade(site, 'ws.localhost', '/raw')).toString('latin1');
    const split = all.indexOf('\r\n\r\n');
    assert.ok(split > 0, `a header block came: ${JSON.stringify(all)}`);
    const headers = all.slice(0, split);
    assert.match(headers, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(headers, /\r\nUpgrade: websocket(\r\n|$)/i);
    assert.match(headers, /\r\nConnection: Upgrade(\r\n|$)/i);
    assert.match(headers, /\r\nX-Fake: raw(\r\n|$)/);
    assert.equal(all.slice(split + 4), 'hello');
  });

  test('a tunnel that carries nothing for the app\'s LodgeTimeout is closed on both sides, with a log line', async () => {
    const all = (await rawUpgrade(site, 'idle.localhost', '/quiet')).toString('latin1');
    assert.match(all, /^HTTP\/1\.1 101 /);
    const seen = fake.last('/quiet')!;
    await eventually(() => seen.events.includes('closed'), "lodged's connection closed too");
    assert.equal(seen.events.includes('BODY_END'), false, 'an idle tunnel is cut, not ended');
    assert.match(site.errorLog(), /LG00071: lodge: the tunnel carried nothing either way for 2 s; both sides are closed/);
  });

  test('a non-101 answer to an upgrade is an ordinary response, its Upgrade and Connection dropped', async () => {
    const r = await request(site.sb.port, 'ws.localhost', '/refuse', { headers: upgradeHeaders() });
    assert.equal(r.status, 403);
    assert.equal(r.text, 'no tunnel here');
    assert.equal(r.headers.upgrade, undefined);
    assert.doesNotMatch(String(r.headers.connection ?? ''), /upgrade/i);
    const seen = fake.last('/refuse')!;
    await eventually(() => seen.events.includes('BODY_END'), 'BODY_END after the END');
    assert.deepEqual(fake.faults, []);
  });

  test('an Upgrade header on a POST is no tunnel: the request goes as ever', async () => {
    const r = await request(site.sb.port, 'localhost', '/lodge-status/form', { method: 'POST', body: 'a=1', headers: upgradeHeaders() });
    assert.equal(r.status, 200);
    assert.equal(fake.last('/lodge-status/form')!.flags & APP_TUNNEL, 0);
  });

  test('after tunnels ended every way, the two request slots still serve requests', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await request(site.sb.port, 'localhost', `/lodge-status/after-${i}`);
      assert.equal(r.status, 200);
    }
    const ws = await connect(site, 'ws.localhost', '/again');
    const done = closed(ws);
    ws.send('bye');
    assert.equal((await done).code, 1000);
    assert.equal(fake.last('/again')!.app.get('apache.workers'), '2', 'the two slots were in force');
  });
});
