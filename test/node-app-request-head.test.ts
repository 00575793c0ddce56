import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { requestHead } from '../sidecar/src/runtime-node/request-head';

// The HTTP request the Node worker gives the app for a REQ's pairs: pure, no process.

const BASE: Array<[string, string]> = [
  ['REQUEST_METHOD', 'GET'],
  ['SCRIPT_NAME', '/sub'],
  ['PATH_INFO', '/a b'],
  ['QUERY_STRING', 'x=1'],
  ['REQUEST_URI', '/sub/a%20b?x=1'],
  ['SERVER_NAME', 't.example'],
  ['SERVER_PORT', '8080'],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['REMOTE_ADDR', '198.51.100.7'],
  ['REMOTE_PORT', '40123'],
  ['HTTP_HOST', 't.example:8080'],
  ['HTTP_USER_AGENT', 'curl/8'],
];

test('method, the URL as sent, the headers back in HTTP spelling, the client as the peer', () => {
  const h = requestHead(BASE);
  assert.equal(h.method, 'GET');
  assert.equal(h.url, '/sub/a%20b?x=1');
  assert.equal(h.headers.Host, 't.example:8080');
  assert.equal(h.headers['User-Agent'], 'curl/8');
  assert.deepEqual(h.peer, { remoteAddress: '198.51.100.7', remotePort: 40123, localAddress: '127.0.0.1', localPort: 8080, encrypted: false });
  assert.equal(h.line, 'GET /sub/a%20b?x=1');
  assert.equal(h.tunnel, false);
  assert.equal(h.headers.Connection, 'keep-alive', 'the in-process connection serves the next request too');
});

test("X-Forwarded-For appends the address Apache saw to the client's; -Proto and -Host are replaced", () => {
  const h = requestHead([...BASE, ['HTTP_X_FORWARDED_FOR', '203.0.113.1, 10.0.0.2'], ['HTTP_X_FORWARDED_PROTO', 'https'], ['HTTP_X_FORWARDED_HOST', 'evil.example'], ['HTTPS', 'on']]);
  assert.equal(h.headers['X-Forwarded-For'], '203.0.113.1, 10.0.0.2, 198.51.100.7');
  assert.equal(h.headers['X-Forwarded-Proto'], 'https', 'from HTTPS=on, not from the client');
  assert.equal(h.headers['X-Forwarded-Host'], 't.example:8080');
  assert.equal(h.peer.encrypted, true);
  const plain = requestHead([...BASE, ['HTTP_X_FORWARDED_PROTO', 'https']]);
  assert.equal(plain.headers['X-Forwarded-Proto'], 'http', "the client's claim of https is not passed on");
  assert.equal(plain.headers['X-Forwarded-For'], '198.51.100.7');
});

test('a body: Content-Length as sent, or chunked when it had none; Expect and hop-by-hop headers dropped', () => {
  const sized = requestHead([...BASE, ['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '12'], ['CONTENT_TYPE', 'application/json'], ['HTTP_EXPECT', '100-continue'], ['HTTP_KEEP_ALIVE', '5'], ['HTTP_TE', 'trailers']]);
  assert.equal(sized.headers['Content-Length'], '12');
  assert.equal(sized.headers['Content-Type'], 'application/json');
  for (const h of ['Expect', 'Keep-Alive', 'Te', 'Transfer-Encoding']) assert.equal(sized.headers[h], undefined, h);
  const chunked = requestHead([...BASE, ['REQUEST_METHOD', 'POST'], ['HTTP_TRANSFER_ENCODING', 'chunked']]);
  assert.equal(chunked.headers['Transfer-Encoding'], 'chunked');
  assert.equal(chunked.headers['Content-Length'], undefined);
});

test("a WebSocket handshake (mod_lodge's TUNNEL rule) keeps Upgrade; anything else loses it", () => {
  const ws: Array<[string, string]> = [...BASE, ['HTTP_UPGRADE', 'websocket'], ['HTTP_CONNECTION', 'keep-alive, Upgrade'], ['HTTP_SEC_WEBSOCKET_KEY', 'k==']];
  const h = requestHead(ws);
  assert.equal(h.tunnel, true);
  assert.equal(h.headers.Upgrade, 'websocket');
  assert.equal(h.headers.Connection, 'Upgrade');
  assert.equal(h.headers['Sec-Websocket-Key'], 'k==');
  for (const other of [
    [...ws, ['CONTENT_LENGTH', '3']],
    ws.map(([k, v]): [string, string] => (k === 'REQUEST_METHOD' ? [k, 'POST'] : [k, v])),
    ws.map(([k, v]): [string, string] => (k === 'SERVER_PROTOCOL' ? [k, 'HTTP/1.0'] : [k, v])),
    ws.map(([k, v]): [string, string] => (k === 'HTTP_UPGRADE' ? [k, 'h2c'] : [k, v])),
  ] as Array<Array<[string, string]>>) {
    const n = requestHead(other);
    assert.equal(n.tunnel, false);
    assert.equal(n.headers.Upgrade, undefined);
    assert.equal(n.headers.Connection, 'keep-alive');
  }
});
