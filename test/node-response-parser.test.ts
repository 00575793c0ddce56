import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { APP_HEAD_MAX, ResponseParser, ResponseSink } from '../sidecar/src/runtime-node/response-parser';
import { chunk, requestHeadText } from '../sidecar/src/runtime-node/request-bytes';
import { requestHead } from '../sidecar/src/runtime-node/request-head';
import { headFrame } from '../sidecar/src/runtime-node/head-frame';
import { encodeHead } from '../sidecar/src/protocol/frames';

// The Node worker's reader of the app's answer (response-parser.ts) and writer of the
// request (request-bytes.ts): pure logic, fed by hand. Each response is also fed one
// byte at a time and in random splits: the outcome must not depend on where the
// connection cut the bytes.

interface Seen {
  heads: Array<{ status: number; headers: Array<[string, string]> }>;
  body: string;
  ended: number;
  error?: string;
  keepAlive: boolean;
}

function feed(parts: Buffer[], opts: { noBody?: boolean; eof?: boolean } = {}): Seen {
  const seen: Seen = { heads: [], body: '', ended: 0, keepAlive: false };
  const sink: ResponseSink = {
    onHead: (status, headers) => seen.heads.push({ status, headers }),
    onBody: (b) => (seen.body += b.toString('latin1')),
    onEnd: () => seen.ended++,
  };
  const p = new ResponseParser();
  p.begin(sink, opts.noBody ?? false);
  for (const part of parts) {
    const e = p.push(part);
    if (e !== undefined) {
      seen.error = e;
      return seen;
    }
  }
  if (opts.eof) seen.error = p.eof();
  seen.keepAlive = p.keepAlive;
  return seen;
}

// A fixed generator: the splits are random but the same on every run.
function splits(bytes: Buffer, seed: number): Buffer[] {
  let x = seed;
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (x % 17);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The same outcome whole, byte by byte, and in 20 random splits. */
function everyWay(text: string, opts: { noBody?: boolean; eof?: boolean } = {}): Seen {
  const bytes = Buffer.from(text, 'latin1');
  const whole = feed([bytes], opts);
  const bytewise = feed([...bytes].map((b) => Buffer.from([b])), opts);
  assert.deepEqual(bytewise, whole, 'byte by byte as whole');
  for (let seed = 1; seed <= 20; seed++) assert.deepEqual(feed(splits(bytes, seed), opts), whole, `split ${seed} as whole`);
  return whole;
}

test('a Content-Length response: its head, its body, and the connection kept', () => {
  const s = everyWay('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello');
  assert.deepEqual(s.heads, [{ status: 200, headers: [['Content-Type', 'text/plain'], ['Content-Length', '5'], ['Connection', 'keep-alive']] }]);
  assert.deepEqual([s.body, s.ended, s.error, s.keepAlive], ['hello', 1, undefined, true]);
});

test('a chunked response is de-chunked, extensions and trailers dropped', () => {
  const s = everyWay('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n');
  assert.deepEqual([s.body, s.ended, s.error, s.keepAlive], ['hello, world', 1, undefined, true]);
});

test('Connection: close, HTTP/1.0, or a body to EOF: the connection is not used again', () => {
  assert.equal(everyWay('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok').keepAlive, false);
  assert.equal(everyWay('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok').keepAlive, false);
  assert.equal(everyWay('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok').keepAlive, true);
  const toEof = everyWay('HTTP/1.1 200 OK\r\n\r\nuntil the end', { eof: true });
  assert.deepEqual([toEof.body, toEof.ended, toEof.error, toEof.keepAlive], ['until the end', 1, undefined, false]);
});

test('no body after a HEAD request, nor with 204 or 304, whatever the head says', () => {
  const head = everyWay('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', { noBody: true });
  assert.deepEqual([head.body, head.ended, head.keepAlive], ['', 1, true]);
  for (const status of [204, 304]) {
    const s = everyWay(`HTTP/1.1 ${status} X\r\nContent-Length: 3\r\n\r\n`);
    assert.deepEqual([s.heads[0].status, s.ended, s.keepAlive], [status, 1, true]);
  }
});

test('1xx answers before the final one are skipped; bytes after the response spoil the connection', () => {
  const s = everyWay('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx');
  assert.deepEqual([s.heads.map((h) => h.status), s.body, s.keepAlive], [[200], 'x', true]);
  assert.equal(everyWay('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxJUNK').keepAlive, false);
  // Bytes after the response in the same read: the sink knows at its end, not later.
  for (const text of ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxJUNK', 'HTTP/1.1 204 No Content\r\n\r\nJUNK', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nJUNK']) {
    const p = new ResponseParser();
    let atEnd: boolean | undefined;
    p.begin({ onHead() {}, onBody() {}, onEnd: () => (atEnd = p.keepAlive) }, false);
    assert.equal(p.push(Buffer.from(text)), undefined);
    assert.equal(atEnd, false, JSON.stringify(text));
  }
});

test('101: the head, then every byte is the upgraded protocol until EOF', () => {
  const s = everyWay('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi', { eof: true });
  assert.deepEqual([s.heads[0].status, s.body, s.ended, s.error, s.keepAlive], [101, '\x81\x02hi', 1, undefined, false]);
});

test('bare LF line ends are read as CRLF ones', () => {
  const s = everyWay('HTTP/1.1 200 OK\nContent-Length: 2\n\nok');
  assert.deepEqual([s.heads[0].headers, s.body, s.ended], [[['Content-Length', '2']], 'ok', 1]);
});

test('an answer that is not HTTP is an error, whole or split', () => {
  const bad = [
    'SMTP ready\r\n\r\n',
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n',
  ];
  for (const text of bad) assert.equal(typeof everyWay(text).error, 'string', JSON.stringify(text));
});

test('a head that never ends is refused once it passes APP_HEAD_MAX bytes, not buffered on', () => {
  const endless = `HTTP/1.1 200 OK\r\n${'X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(APP_HEAD_MAX / 16)}`;
  assert.match(everyWay(endless).error ?? '', /larger than 16384 bytes/);
  const sizeLine = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}`;
  assert.match(everyWay(sizeLine).error ?? '', /longer than/);
});

test('EOF before the answer, in its head, or in its body: each says which', () => {
  assert.match(feed([], { eof: true }).error ?? '', /without answering/);
  assert.match(everyWay('HTTP/1.1 200 OK\r\nContent-', { eof: true }).error ?? '', /middle of its response head/);
  assert.match(everyWay('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort', { eof: true }).error ?? '', /middle of its response$/);
});

test('the request head as the http client writes it; CR, LF or NUL refused', () => {
  const base: Array<[string, string]> = [['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/p?q=1'], ['HTTP_HOST', 'h.example'], ['REMOTE_ADDR', '192.0.2.1']];
  const text = requestHeadText(requestHead(base));
  assert.equal(text, 'POST /p?q=1 HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h.example\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n');
  assert.ok(!requestHeadText(requestHead([...base, ['REQUEST_METHOD', 'GET']])).includes('Content-Length'));
  for (const bad of ['a\r\nX-Injected: 1', 'a\nb', 'a\0b']) {
    assert.throws(() => requestHeadText(requestHead([...base, ['HTTP_X_ODD', bad]])), /Invalid character in header content \["X-Odd"\]/);
  }
  assert.throws(() => requestHeadText(requestHead([...base, ['REQUEST_URI', '/a b']])), /unescaped characters/);
  assert.equal(chunk(Buffer.from('hello, world!!!!')).toString(), '10\r\nhello, world!!!!\r\n');
});

test("the HEAD frame's bytes are encodeHead's", () => {
  const headers: Array<[string, string]> = [['Content-Type', 'text/html; charset=\xe9'], ['X-Empty', ''], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']];
  assert.deepEqual(headFrame(404, headers), encodeHead(404, headers));
  assert.deepEqual(headFrame(200, []), encodeHead(200, []));
});
