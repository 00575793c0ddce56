import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { FrameType, decodeError } from '../sidecar/src/protocol/frames';
import { HandedExchange, handable } from '../sidecar/src/runtime-node/handed-exchange';
import { requestHead } from '../sidecar/src/runtime-node/request-head';
import { FakeFrameOut, fakeFrameOut } from './helpers/fake-frame-out';

// A request handed to a real http server as Node's own request and response objects
// (handed-exchange.ts), with FakeFrameOut in lodged's place: what the app sees, and the
// frames its answers become, with no HTTP/1.1 written or parsed in between.

const pairs = (method: string, url: string, extra: Array<[string, string]> = []): Array<[string, string]> => [
  ['REQUEST_METHOD', method],
  ['REQUEST_URI', url],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['HTTP_HOST', 't.example'],
  ['REMOTE_ADDR', '192.0.2.1'],
  ['REMOTE_PORT', '40000'],
  ...extra,
];

type Done = { status: number; head?: { status: number; headers: Array<[string, string]> }; body: string; last: number; out: FakeFrameOut };

// HEAD's payload: status (u16), then pairs of name (u16 length) and value (u32 length).
function readHead(p: Buffer): { status: number; headers: Array<[string, string]> } {
  const headers: Array<[string, string]> = [];
  let at = 2;
  while (at < p.length) {
    const n = p.readUInt16BE(at);
    const name = p.toString('latin1', at + 2, at + 2 + n);
    at += 2 + n;
    const v = p.readUInt32BE(at);
    headers.push([name, p.toString('latin1', at + 4, at + 4 + v)]);
    at += 4 + v;
  }
  return { status: p.readUInt16BE(0), headers };
}

/** One exchange; `feed` may send BODY frames; resolves with its frames once it is done. */
function handed(server: http.Server, p: Array<[string, string]>, feed?: (ex: HandedExchange, out: FakeFrameOut) => void, out = fakeFrameOut()) {
  return new Promise<Done>((resolve) => {
    const ex = new HandedExchange(requestHead(p), server, out, (status) => {
      const h = out.frames.find((f) => f.type === FrameType.HEAD);
      const body = Buffer.concat(out.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)).toString();
      resolve({ status, head: h && readHead(h.payload), body, last: out.frames[out.frames.length - 1].type, out });
    });
    feed?.(ex, out);
  });
}

const names = (d: Done) => d.head!.headers.map(([n]) => n.toLowerCase());

test('http and https servers are handed requests; a net server and a WebSocket handshake are not', () => {
  const get = requestHead(pairs('GET', '/'));
  assert.equal(handable(http.createServer(), get), true);
  assert.equal(handable(net.createServer(), get), false);
  const ws = requestHead(pairs('GET', '/', [['HTTP_UPGRADE', 'websocket'], ['HTTP_CONNECTION', 'Upgrade']]));
  assert.equal(handable(http.createServer(), ws), false);
});

test("the app sees the real request: method, URL, headers in order, the client's address", async () => {
  let seen: http.IncomingMessage | undefined;
  const server = http.createServer((req, res) => {
    seen = req;
    res.setHeader('Content-Length', '2');
    res.end('ok');
  });
  const d = await handed(server, pairs('GET', '/a%20b?x=1', [['HTTP_X_FORWARDED_FOR', '198.51.100.7'], ['HTTP_USER_AGENT', 'ua']]));
  assert.equal(seen!.method, 'GET');
  assert.equal(seen!.url, '/a%20b?x=1');
  assert.equal(seen!.httpVersion, '1.1');
  assert.equal(seen!.headers.host, 't.example');
  assert.equal(seen!.headers['user-agent'], 'ua');
  assert.equal(seen!.headers['x-forwarded-for'], '198.51.100.7, 192.0.2.1');
  assert.equal(seen!.socket.remoteAddress, '192.0.2.1');
  assert.equal(seen!.socket.remotePort, 40000);
  assert.equal(seen!.rawHeaders[0], 'Host', 'Host first, as a proxy writes it');
  assert.equal(d.status, 200);
  assert.equal(d.head!.status, 200);
  assert.equal(d.body, 'ok');
  assert.equal(d.last, FrameType.END);
  assert.deepEqual(d.out.frames.map((f) => f.type), [FrameType.HEAD, FrameType.DATA, FrameType.END]);
  assert.ok(names(d).includes('content-length'));
  assert.ok(!names(d).includes('connection') && !names(d).includes('keep-alive'), "the runtime's own connection headers are not the client's");
});

test('a body with no length, and one the app says is chunked, goes out as written: DATA frames carry the lengths', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/te') res.setHeader('Transfer-Encoding', 'chunked');
    res.write('ab');
    setImmediate(() => res.end(Buffer.from('cd')));
  });
  for (const url of ['/', '/te']) {
    const d = await handed(server, pairs('GET', url));
    assert.equal(d.body, 'abcd', `${url}: no chunk framing in the body`);
    assert.ok(!names(d).includes('transfer-encoding'), `${url}: no Transfer-Encoding in HEAD`);
    assert.equal(d.last, FrameType.END);
  }
});

test('request bodies reach the app whole: with a length in pieces, chunked until BODY_END; POST without one says Content-Length: 0', async () => {
  const got: Array<{ body: string; cl?: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ body, cl: req.headers['content-length'] });
      res.end(`got ${body.length}`);
    });
  });
  const a = await handed(server, pairs('POST', '/', [['CONTENT_LENGTH', '6']]), (ex) => {
    ex.body(Buffer.from('abc'));
    ex.body(Buffer.from('defEXTRA'));
  });
  assert.equal(a.body, 'got 6');
  assert.equal(got[0].body, 'abcdef', 'bytes past the length are no part of it');
  const b = await handed(server, pairs('POST', '/', [['HTTP_TRANSFER_ENCODING', 'chunked']]), (ex) => {
    ex.body(Buffer.from('one,'));
    setImmediate(() => {
      ex.body(Buffer.from('two'));
      ex.bodyEnd();
    });
  });
  assert.equal(b.body, 'got 7');
  assert.equal(got[1].body, 'one,two');
  await handed(server, pairs('POST', '/'));
  assert.equal(got[2].cl, '0');
});

test('a request body the app does not read yet pauses the input, and reading it resumes it', async () => {
  let req: http.IncomingMessage | undefined;
  let res: http.ServerResponse | undefined;
  const server = http.createServer((q, s) => ((req = q), (res = s)));
  const out = fakeFrameOut();
  const big = Buffer.alloc(64 * 1024, 120);
  let ex: HandedExchange | undefined;
  const done = handed(server, pairs('POST', '/', [['CONTENT_LENGTH', String(big.length * 4)]]), (e) => {
    ex = e;
    for (let i = 0; i < 3; i++) e.body(big);
  }, out);
  assert.equal(out.paused, true, "past the request's high-water mark the lane stops reading");
  let n = 0;
  req!.on('data', (c: Buffer) => (n += c.length));
  await new Promise((r) => setImmediate(r));
  assert.equal(out.paused, false, 'reading it resumed the lane');
  ex!.body(big);
  await new Promise<void>((r) => req!.on('end', () => r()));
  assert.equal(n, big.length * 4);
  assert.equal(out.paused, false, 'the whole body in hand: the lane reads on (for an ABORT)');
  res!.end('read');
  assert.equal((await done).body, 'read');
});

test('a full lane: write() says so and the response gets drain when it has room', async () => {
  let drained = false;
  const server = http.createServer((_req, res) => {
    const ok = res.write(Buffer.alloc(1000, 97));
    assert.equal(ok, false, 'write() says the lane is full');
    res.once('drain', () => {
      drained = true;
      res.end('z');
    });
  });
  const out = fakeFrameOut();
  out.full = true;
  const done = handed(server, pairs('GET', '/'), undefined, out);
  await new Promise((r) => setImmediate(r));
  out.drain();
  const d = await done;
  assert.equal(drained, true);
  assert.equal(d.body.length, 1001);
});

test('ABORT: the app sees its request aborted and its response closed; END goes out', async () => {
  const events: string[] = [];
  const server = http.createServer((req, res) => {
    req.on('aborted', () => events.push('aborted'));
    req.on('close', () => events.push('req close'));
    res.on('close', () => events.push('res close'));
  });
  const d = await handed(server, pairs('GET', '/hang'), (ex) => setImmediate(() => ex.abort()));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(d.last, FrameType.END);
  assert.equal(d.head, undefined);
  assert.ok(events.includes('aborted') && events.includes('req close') && events.includes('res close'), events.join(','));
});

test('an app that destroys its response before answering gets a clear 502', async () => {
  const server = http.createServer((_req, res) => res.destroy());
  const d = await handed(server, pairs('GET', '/gone'));
  assert.equal(d.status, 502);
  assert.equal(d.last, FrameType.ERROR);
  assert.match(decodeError(d.out.frames[d.out.frames.length - 1].payload).message, /GET \/gone: the app closed the connection without answering/);
});

test('103 Early Hints and 100 Continue are not the answer; HEAD gets no body', async () => {
  const server = http.createServer((req, res) => {
    res.writeContinue();
    res.writeEarlyHints({ link: '</a.css>; rel=preload' });
    if (req.method === 'HEAD') return res.writeHead(200, { 'Content-Length': '12345' }).end();
    setImmediate(() => res.end('after'));
  });
  const d = await handed(server, pairs('GET', '/'));
  assert.equal(d.head!.status, 200);
  assert.equal(d.body, 'after');
  const h = await handed(server, pairs('HEAD', '/'));
  assert.deepEqual(h.out.frames.map((f) => f.type), [FrameType.HEAD, FrameType.END]);
  assert.ok(h.head!.headers.some(([n, v]) => n === 'Content-Length' && v === '12345'));
});

test("the app's 101 to a request that asked for no upgrade is refused", async () => {
  const server = http.createServer((_req, res) => res.writeHead(101).end());
  const d = await handed(server, pairs('GET', '/'));
  assert.equal(d.status, 502);
  assert.equal(d.last, FrameType.ERROR);
});

test("an app's response head past 16 KiB is refused with a clear 502, as over a connection", async () => {
  const server = http.createServer((_req, res) => {
    res.setHeader('X-Big', 'x'.repeat(20 * 1024));
    res.end('never');
  });
  const d = await handed(server, pairs('GET', '/big'));
  assert.equal(d.status, 502);
  assert.equal(d.head, undefined, 'no HEAD went out');
  assert.equal(d.body, '', 'nor any of the body');
  assert.match(decodeError(d.out.frames[d.out.frames.length - 1].payload).message, /GET \/big: the response head is larger than 16384 bytes/);
});
