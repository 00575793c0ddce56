import * as net from 'node:net';

/**
 * Python for a tenant's app that speaks the frame protocol itself on its socket
 * (fd 3, as a hostile app can): frame(), pairs(), head(), send(); and serve_raw(),
 * with which the app takes the socket over for good, as a hostile worker would.
 * See PROTOCOL.md.
 */
export const FRAMES_PY = `
import os, select, struct, time
REQ, BODY_END, HEAD, DATA, END = 0x02, 0x04, 0x10, 0x11, 0x12
def frame(t, payload=b""):
    return struct.pack(">BBHI", t, 0, 0, len(payload)) + payload
def pairs(headers):
    return b"".join(struct.pack(">H", len(k)) + k + struct.pack(">I", len(v)) + v for k, v in headers)
def head(status, headers=()):
    return frame(HEAD, struct.pack(">H", status) + pairs(headers))
def send(*frames):
    data = b"".join(frames)
    while data:
        try:
            data = data[os.write(3, data):]
        except BlockingIOError:
            select.select([], [3], [])
def recv_exact(n):
    out = b""
    while len(out) < n:
        try:
            got = os.read(3, n - len(out))
        except BlockingIOError:
            select.select([3], [], [])
            continue
        if not got:
            os._exit(0)
        out += got
    return out
def path_of(payload):
    i = 0
    while i < len(payload):
        (n,) = struct.unpack_from(">H", payload, i)
        name = payload[i + 2:i + 2 + n]
        i += 2 + n
        (v,) = struct.unpack_from(">I", payload, i)
        if name == b"PATH_INFO":
            return payload[i + 4:i + 4 + v].decode("latin-1")
        i += 4 + v
    return "/"
def serve_raw(respond, environ):
    """This request and every later one to this worker answered with the frames
    respond(path) returns, written by the app itself: the runtime never gets its
    socket back (no frame of its own follows, and no process exit races lodged)."""
    environ["wsgi.input"].read()
    send(*respond(environ["PATH_INFO"]))
    path = None
    while True:
        t, _, _, n = struct.unpack(">BBHI", recv_exact(8))
        payload = recv_exact(n)
        if t == REQ:
            path = path_of(payload)
        elif t == BODY_END and path is not None:
            send(*respond(path))
            path = None
`;

/**
 * Writes raw bytes to Apache (one connection) and resolves with every byte Apache
 * sent until it closed the connection: what a client, a proxy or a cache on a kept
 * connection reads.
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => c.write(bytes));
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('close', () => resolve(Buffer.concat(parts)));
    c.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(Buffer.concat(parts)) : reject(err)));
    c.setTimeout(timeoutMs, () => c.destroy(new Error(`Apache did not close the connection within ${timeoutMs} ms; got: ${Buffer.concat(parts).toString('latin1')}`)));
  });
}

export interface RawResponse {
  status: number;
  /** Header lines as sent, names lower-cased, in order. */
  headers: Array<[string, string]>;
  body: Buffer;
}

/** The first response of a stream of bytes, and what follows it (bodyless: no body read). */
export function firstResponse(stream: Buffer, bodyless: boolean): { res: RawResponse; rest: Buffer } {
  const end = stream.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in: ${stream.toString('latin1')}`);
  const lines = stream.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
  const headers = lines.slice(1).map((l): [string, string] => {
    const i = l.indexOf(':');
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  });
  let at = end + 4;
  let body: Buffer = Buffer.alloc(0);
  const length = headers.find(([n]) => n === 'content-length')?.[1];
  const chunked = headers.some(([n, v]) => n === 'transfer-encoding' && /chunked/i.test(v));
  if (!bodyless && length !== undefined) {
    body = stream.subarray(at, at + Number(length));
    at += Number(length);
  } else if (!bodyless && chunked) {
    const pieces: Buffer[] = [];
    for (;;) {
      const eol = stream.indexOf('\r\n', at);
      const size = parseInt(stream.subarray(at, eol).toString('latin1'), 16);
      at = eol + 2;
      if (!(size > 0)) {
        at = stream.indexOf('\r\n', at) + 2;
        break;
      }
      pieces.push(stream.subarray(at, at + size));
      at += size + 2;
    }
    body = Buffer.concat(pieces);
  } else if (!bodyless) {
    body = stream.subarray(at);
    at = stream.length;
  }
  return { res: { status, headers, body }, rest: stream.subarray(at) };
}
