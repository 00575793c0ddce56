import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { WSGI_RUNTIME } from '../sidecar/src/pool/worker-process';

// The pure parts of the ASGI runtime, without Apache or root: the HTTP scope made from a
// request's REQ pairs, and the WebSocket codec (ws_codec.py) fed frames as a client would
// send them, in pieces. Each case runs the runtime's own modules in python3 and returns
// what they made as JSON.

const RUNTIMES = path.dirname(WSGI_RUNTIME);

function py(body: string): unknown {
  const script = `
import json, os, sys
sys.path.insert(0, ${JSON.stringify(RUNTIMES)})
sys.dont_write_bytecode = True
from _lodge_runtime.asgi_scope import http_scope
from _lodge_runtime.asgi_websocket import is_tunnel, websocket_scope
from _lodge_runtime.ws_codec import Decoder, WsError, accept_key, close_frame, encode, unmask

def frame(op, payload, fin=True, mask=b"\\x01\\x02\\x03\\x04", length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + mask + unmask(payload, mask)

def events(data, step=1, limit=1 << 20):
    d, out = Decoder(limit), []
    try:
        for i in range(0, len(data), step):
            d.feed(data[i:i + step])
            while True:
                e = d.next()
                if e is None:
                    break
                out.append([e[0]] + [x.decode("latin-1") if isinstance(x, bytes) else x for x in e[1:]])
    except WsError as e:
        out.append(["error", e.code, e.reason])
    return out

${body}
`;
  return JSON.parse(execFileSync('/usr/bin/python3', ['-I', '-c', script], { encoding: 'utf8' }));
}

const ENV = {
  REQUEST_METHOD: 'GET', SCRIPT_NAME: '/app', PATH_INFO: '/caf\u00c3\u00a9', QUERY_STRING: 'q=%C3%A9&x=1',
  REQUEST_URI: '/app/caf%C3%A9?q=%C3%A9&x=1', SERVER_PROTOCOL: 'HTTP/2.0', HTTPS: 'on', SERVER_NAME: 'example.test',
  SERVER_ADDR: '10.0.0.1', SERVER_PORT: '8443', REMOTE_ADDR: '192.0.2.7', REMOTE_PORT: '50123',
  CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '2', HTTP_X_FORWARDED_FOR: '1.2.3.4', HTTP_ACCEPT_LANGUAGE: 'en, de',
  'wsgi.version': [1, 0],
};

test('the HTTP scope: decoded path apart from root_path, raw bytes, lowercased headers from the CGI names, HTTP/2 as "2", https', () => {
  const s = py(`
s = http_scope(json.loads(${JSON.stringify(JSON.stringify(ENV))}), {"db": "x"})
s["raw_path"] = s["raw_path"].decode("latin-1"); s["query_string"] = s["query_string"].decode("latin-1")
s["headers"] = sorted([k.decode(), v.decode("latin-1")] for k, v in s["headers"])
print(json.dumps(s))`) as Record<string, unknown>;
  assert.deepEqual(s, {
    type: 'http', asgi: { version: '3.0', spec_version: '2.4' }, http_version: '2', method: 'GET', scheme: 'https',
    path: '/café', raw_path: '/app/caf%C3%A9', query_string: 'q=%C3%A9&x=1', root_path: '/app',
    headers: [['accept-language', 'en, de'], ['content-length', '2'], ['content-type', 'application/json'], ['x-forwarded-for', '1.2.3.4']],
    client: ['192.0.2.7', 50123], server: ['10.0.0.1', 8443], state: { db: 'x' },
  });
});

test('a handshake is a tunnel by mod_lodge\'s rule, and its scope is websocket with the offered subprotocols', () => {
  const ws = { ...ENV, SERVER_PROTOCOL: 'HTTP/1.1', HTTP_UPGRADE: 'WebSocket', HTTP_CONNECTION: 'keep-alive, Upgrade', HTTP_SEC_WEBSOCKET_PROTOCOL: 'a.v2, b' } as Record<string, unknown>;
  delete ws.CONTENT_LENGTH;
  const got = py(`
env = json.loads(${JSON.stringify(JSON.stringify(ws))})
s = websocket_scope(env, None)
print(json.dumps([is_tunnel(env), is_tunnel(dict(env, CONTENT_LENGTH="3")), is_tunnel(dict(env, REQUEST_METHOD="POST")),
                  is_tunnel(dict(env, SERVER_PROTOCOL="HTTP/2.0")), s["type"], s["scheme"], "method" in s, s["subprotocols"]]))`);
  assert.deepEqual(got, [true, false, false, false, 'websocket', 'wss', false, ['a.v2', 'b']]);
});

test('the handshake answer is RFC 6455\'s, and a key that is not 16 bytes of base64 gets none', () => {
  assert.deepEqual(py(`print(json.dumps([accept_key("dGhlIHNhbXBsZSBub25jZQ=="), accept_key("c2hvcnQ="), accept_key("not base64!")]))`), [
    's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', null, null,
  ]);
});

test('client frames fed a byte at a time: masked text, a fragmented message with a ping between, 16- and 64-bit lengths, close', () => {
  const got = py(`
data = (frame(1, "héllo".encode()) + frame(2, b"ab", fin=False) + frame(9, b"p?") + frame(0, b"cd", fin=False) + frame(0, b"ef")
        + frame(2, b"x" * 300) + frame(2, b"y" * 70000) + frame(10, b"") + frame(8, (1001).to_bytes(2, "big") + "gone ✓".encode()))
out = events(data, step=1)
print(json.dumps([[e[0], len(e[1]) if e[0] == "bytes" and len(e[1]) > 10 else e[1]] + e[2:] for e in out]))`);
  assert.deepEqual(got, [
    ['text', 'héllo'], ['ping', 'p?'], ['bytes', 'abcdef'], ['bytes', 300], ['bytes', 70000], ['pong', ''], ['close', 1001, 'gone ✓'],
  ]);
});

test('protocol errors each get their close code, a too-large message on its length alone', () => {
  const got = py(`
cases = [
    frame(1, b"hi")[:1] + bytes((2,)) + b"hi",                 # not masked
    bytes((0x80 | 0x40 | 1, 0x80)) + b"\\x00\\x00\\x00\\x00",     # RSV1 with no extension agreed
    frame(0, b"x"),                                            # continuation with no message begun
    frame(1, b"a", fin=False) + frame(1, b"b"),                # a new message inside a fragmented one
    frame(9, b"p", fin=False),                                 # a fragmented control frame
    frame(9, b"p" * 126),                                      # a control frame over 125 bytes
    frame(1, b"\\xff\\xfe"),                                   # text that is not UTF-8
    frame(8, (1005).to_bytes(2, "big")),                       # a close code no peer may send
    frame(8, b"\\x03"),                                        # a close frame of one byte
    frame(3, b""),                                             # an unknown opcode
]
out = [events(c, step=1024)[-1][:2] for c in cases]
# Only the header of a 2 GiB frame: refused before any payload is held.
out.append(events(frame(2, b"", length=1 << 31)[:14], limit=16 << 20)[-1][:2])
print(json.dumps(out))`);
  assert.deepEqual(got, [
    ['error', 1002], ['error', 1002], ['error', 1002], ['error', 1002], ['error', 1002], ['error', 1002],
    ['error', 1007], ['error', 1002], ['error', 1002], ['error', 1002], ['error', 1009],
  ]);
});

test('server frames are unmasked with the shortest length form; a close reason is clipped on a character boundary', () => {
  const got = py(`
print(json.dumps([encode(1, b"hi").hex(), encode(2, b"x" * 200)[:4].hex(), encode(2, b"x" * 70000)[:10].hex(),
                  close_frame(1000, "").hex(), len(close_frame(1000, "é" * 100)), close_frame(1000, "é" * 100)[4:].decode("utf-8")[-1]]))`);
  assert.deepEqual(got, ['81026869', '827e00c8', '827f0000000000011170', '8802' + '03e8', 2 + 2 + 122, 'é']);
});
