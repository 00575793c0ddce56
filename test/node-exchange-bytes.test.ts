import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { FrameType, decodeError } from '../sidecar/src/protocol/frames';
import { AppConnection } from '../sidecar/src/runtime-node/app-connection';
import { Exchange } from '../sidecar/src/runtime-node/exchange';
import { requestHead } from '../sidecar/src/runtime-node/request-head';
import { fakeFrameOut } from './helpers/fake-frame-out';

// The Node worker's exchange in process, with a real http server and FakeFrameOut in
// lodged's place (frames kept, never full): the request the app's server reads, and the
// frames its answers become, now that the runtime writes and reads the bytes itself.

const pairs = (method: string, url: string, extra: Array<[string, string]> = []): Array<[string, string]> => [
  ['REQUEST_METHOD', method],
  ['REQUEST_URI', url],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['HTTP_HOST', 't.example'],
  ['REMOTE_ADDR', '192.0.2.1'],
  ...extra,
];

/** One exchange: `feed` gets it to send BODY frames; resolves with its frames once it is done. */
function exchange(server: http.Server, connection: AppConnection, p: Array<[string, string]>, feed?: (ex: Exchange) => void) {
  const out = fakeFrameOut();
  return new Promise<{ status: number; body: string; last: number }>((resolve) => {
    const ex = new Exchange(requestHead(p), server, connection, out, (status) => {
      const body = Buffer.concat(out.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)).toString();
      resolve({ status, body, last: out.frames[out.frames.length - 1].type });
    });
    feed?.(ex);
  });
}

test('bodies reach the app whole, chunked or with a length; POST without one says Content-Length: 0; one connection throughout', async () => {
  let conns = 0;
  const seen: Array<{ raw: string[]; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ raw: req.rawHeaders, body });
      res.end(`got ${body.length}`);
    });
  });
  server.on('connection', () => conns++);
  const c = new AppConnection();
  const chunked = await exchange(server, c, pairs('POST', '/c', [['HTTP_TRANSFER_ENCODING', 'chunked']]), (ex) => {
    ex.body(Buffer.from('one,'));
    ex.body(Buffer.alloc(0));
    ex.body(Buffer.from('two'));
    ex.bodyEnd();
  });
  assert.deepEqual([chunked.status, chunked.body, chunked.last], [200, 'got 7', FrameType.END]);
  const sized = await exchange(server, c, pairs('PUT', '/s', [['CONTENT_LENGTH', '5']]), (ex) => {
    ex.body(Buffer.from('ab'));
    ex.body(Buffer.from('cde'));
  });
  assert.equal(sized.body, 'got 5', 'answered with the last byte, before any BODY_END');
  const empty = await exchange(server, c, pairs('POST', '/e'), (ex) => ex.bodyEnd());
  assert.equal(empty.body, 'got 0');
  assert.deepEqual(seen.map((s) => s.body), ['one,two', 'abcde', '']);
  assert.deepEqual(seen[0].raw, ['Host', 't.example', 'Transfer-Encoding', 'chunked', 'X-Forwarded-For', '192.0.2.1', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 't.example', 'Connection', 'keep-alive']);
  assert.deepEqual(seen[2].raw.slice(-2), ['Content-Length', '0']);
  assert.equal(conns, 1);
});

test("a chunked answer comes out de-chunked; `Connection: close` costs the connection; HEAD has no body", async () => {
  let conns = 0;
  const server = http.createServer((req, res) => {
    if (req.url === '/close') res.setHeader('Connection', 'close');
    if (req.method === 'HEAD') return res.writeHead(200, { 'Content-Length': '99' }).end();
    res.write('part one, ');
    setImmediate(() => res.end('part two'));
  });
  server.on('connection', () => conns++);
  const c = new AppConnection();
  assert.equal((await exchange(server, c, pairs('GET', '/a'))).body, 'part one, part two');
  assert.equal((await exchange(server, c, pairs('GET', '/close'))).body, 'part one, part two');
  assert.equal(conns, 1);
  const head = await exchange(server, c, pairs('HEAD', '/h'));
  assert.deepEqual([head.status, head.body, head.last], [200, '', FrameType.END]);
  assert.equal(conns, 2, 'a new connection after Connection: close');
  assert.equal((await exchange(server, c, pairs('GET', '/after-head'))).body, 'part one, part two', 'the HEAD left the connection whole');
  assert.equal(conns, 2);
});

test('an app that closes the connection mid-answer: ERROR, and the next request gets a new connection', async () => {
  let conns = 0;
  const server = http.createServer((req, res) => {
    if (req.url === '/cut') {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('short');
      return setImmediate(() => req.socket.destroy());
    }
    res.end('fine');
  });
  server.on('connection', () => conns++);
  const c = new AppConnection();
  const cut = await exchange(server, c, pairs('GET', '/cut'));
  assert.equal(cut.last, FrameType.ERROR);
  assert.equal((await exchange(server, c, pairs('GET', '/next'))).body, 'fine');
  assert.equal(conns, 2);
});

test('a header value with CR or LF is refused before the connection is touched', () => {
  const server = http.createServer(() => assert.fail('no request reaches the app'));
  assert.throws(
    () => new Exchange(requestHead(pairs('GET', '/x', [['HTTP_X_BAD', 'a\r\nInjected: 1']])), server, new AppConnection(), fakeFrameOut(), () => undefined),
    /Invalid character in header content/,
  );
});

test('101: the tunnel carries bytes both ways; the client leaving ends it with END', async () => {
  const server = http.createServer();
  server.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi ');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
  });
  const out = fakeFrameOut();
  const done = new Promise<number>((resolve) => {
    const ex = new Exchange(requestHead(pairs('GET', '/ws', [['HTTP_UPGRADE', 'websocket'], ['HTTP_CONNECTION', 'Upgrade']])), server, new AppConnection(), out, resolve);
    const wait = setInterval(() => {
      if (!out.frames.some((f) => f.type === FrameType.HEAD)) return;
      clearInterval(wait);
      ex.body(Buffer.from('echo'));
      setImmediate(() => ex.bodyEnd());
    }, 5);
  });
  assert.equal(await done, 101);
  const body = Buffer.concat(out.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)).toString();
  assert.deepEqual([out.frames[0].payload.readUInt16BE(0), body, out.frames[out.frames.length - 1].type], [101, 'hi echo', FrameType.END]);
  assert.ok(!out.frames.some((f) => f.type === FrameType.ERROR && decodeError(f.payload)));
});

test('a 101 to a request that asked for no upgrade is the app\'s error (502), not a tunnel', async () => {
  const server = http.createServer((req) => {
    req.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes');
  });
  const r = await exchange(server, new AppConnection(), pairs('GET', '/plain'));
  assert.equal(r.status, 502);
  assert.equal(r.last, FrameType.ERROR);
  assert.equal(r.body, '', 'none of what followed the 101 went out');
});
