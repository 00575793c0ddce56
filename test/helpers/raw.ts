import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ApacheVersion } from '../../sidecar/src/sandbox/sandbox';
import { Site, eventually, forEachApache } from './site';

/**
 * Python for a tenant's app that speaks the frame protocol itself, as a hostile app
 * can, on the connection its request came on: fd 3 (lodged's socket, or the same
 * socket lent to mod_lodge), or, straight to the app (lodged.json direct), the
 * connection mod_lodge made to the app's socket. frame(), pairs(), head(), send();
 * came_on(), which notes which of the two a request came on (in came-on.log, for
 * assertCameOn() and untilOnPath()); and serve_raw(), with which the app takes both
 * over for good, as a hostile worker would. See PROTOCOL.md.
 */
export const FRAMES_PY = `
import os, select, socket, stat, struct, sys, time
REQ, BODY, BODY_END, ABORT, HEAD, DATA, END, ACCEPTED = 0x02, 0x03, 0x04, 0x05, 0x10, 0x11, 0x12, 0x16
WORKER_FD, LISTEN_FD = 3, 4
_conn = None   # serve_raw's connection of the moment
def frame(t, payload=b""):
    return struct.pack(">BBHI", t, 0, 0, len(payload)) + payload
def pairs(headers):
    return b"".join(struct.pack(">H", len(k)) + k + struct.pack(">I", len(v)) + v for k, v in headers)
def head(status, headers=()):
    return frame(HEAD, struct.pack(">H", status) + pairs(headers))
def request_fd():
    """Where this request came from: straight to the app, the runtime holds the
    connection mod_lodge made, the only socket above LISTEN_FD (the scoreboard,
    the poller and the log are no sockets); else fd 3."""
    if _conn is not None:
        return _conn
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > LISTEN_FD and stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:
            pass   # the listing's own descriptor, closed by now
    return WORKER_FD
def came_on(path):
    with open("came-on.log", "a") as f:
        f.write("%s %s\\n" % ("fd3" if request_fd() == WORKER_FD else "app-socket", path))
def send(*frames):
    fd = request_fd()
    data = b"".join(frames)
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            select.select([], [fd], [])
def recv_exact(fd, n):
    out = b""
    while len(out) < n:
        try:
            got = os.read(fd, n - len(out))
        except BlockingIOError:
            select.select([fd], [], [])
            continue
        except ConnectionResetError:
            got = b""
        if not got:
            if fd == WORKER_FD:
                os._exit(0)   # lodged hung up
            return None   # mod_lodge left
        out += got
    return out
def next_frame(fd):
    header = recv_exact(fd, 8)
    if header is None:
        return None, None
    t, _, _, n = struct.unpack(">BBHI", header)
    payload = recv_exact(fd, n)
    return (None, None) if payload is None else (t, payload)
def pair_of(payload, wanted):
    i = 0
    while i < len(payload):
        (n,) = struct.unpack_from(">H", payload, i)
        name = payload[i + 2:i + 2 + n]
        i += 2 + n
        (v,) = struct.unpack_from(">I", payload, i)
        if name == wanted:
            return payload[i + 4:i + 4 + v].decode("latin-1")
        i += 4 + v
    return ""
def path_of(payload):
    return pair_of(payload, b"PATH_INFO") or "/"
def status_of(frames):
    """The status a response of frames answers (0: it has no HEAD first)."""
    return struct.unpack_from(">H", frames[0], 8)[0] if frames and frames[0][0] == HEAD else 0
def runtime_board():
    """The runtime's scoreboard slot, from the frames that called the app: a request
    straight from Apache is counted there, and lodged stops a worker whose slot
    stays busy far past LodgeTimeout. This app never returns, so it keeps the slot
    right itself, as the runtime would."""
    f = sys._getframe()
    while f is not None:
        board = getattr(f.f_locals.get("self"), "board", None)
        if board is not None:
            return board
        f = f.f_back
    return None
def listening():
    """The app's socket when lodged passed one (direct), else None."""
    try:
        s = socket.socket(fileno=os.dup(LISTEN_FD))
    except OSError:
        return None
    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        return s
    s.close()
    return None
def serve_connection(listener, respond, board):
    """One request on a connection of mod_lodge's to the app's socket, answered with
    respond(path)'s frames: ACCEPTED first, REQ ... BODY_END in, answer, close."""
    global _conn
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, InterruptedError):
        return   # another worker took it
    conn.setblocking(True)
    fd = _conn = conn.fileno()
    try:
        os.write(fd, struct.pack(">BBHII", ACCEPTED, 0, 0, 4, os.getpid()))
        t, payload = next_frame(fd)
        if t != REQ:
            return
        path = path_of(payload)
        came_on(path)
        if board is not None:
            board.begin(pair_of(payload, b"REQUEST_METHOD"), path)
        while t != BODY_END:
            t, _ = next_frame(fd)
            if t is None or t == ABORT:
                if board is not None:
                    board.end(0)
                return
        frames = respond(path)
        try:
            send(*frames)
        except OSError:
            pass   # mod_lodge left before the answer was out
        if board is not None:
            board.end(status_of(frames))
    finally:
        _conn = WORKER_FD
        conn.close()
def serve_raw(respond, environ):
    """This request and every later one to this worker answered with the frames
    respond(path) returns, written by the app itself: the runtime never gets its
    connections back (no frame of its own follows, and no process exit races
    lodged). Requests lodged hands over come on fd 3; straight to the app, each
    on a connection accepted on the app's socket."""
    global _conn
    environ["wsgi.input"].read()
    came_on(environ["PATH_INFO"])
    first = request_fd()
    frames = respond(environ["PATH_INFO"])
    send(*frames)
    # From now on the connection is always named: the listener's copy below is a
    # socket above LISTEN_FD too.
    _conn = WORKER_FD
    board = runtime_board()
    if first != WORKER_FD:
        # One request per connection; the runtime's slot says this one ended.
        os.close(first)
        if board is not None:
            board.end(status_of(frames))
    listener = listening()
    waits = [WORKER_FD] if listener is None else [WORKER_FD, listener.fileno()]
    path = None
    while True:
        readable, _, _ = select.select(waits, [], [])
        if listener is not None and listener.fileno() in readable:
            serve_connection(listener, respond, board)
        if WORKER_FD not in readable:
            continue
        t, payload = next_frame(WORKER_FD)
        if t == REQ:
            path = path_of(payload)
            came_on(path)
        elif t == BODY_END and path is not None:
            send(*respond(path))
            path = None
`;

/** The two ways a request reaches a worker, each test of the hostile files runs on both. */
export interface RequestPath {
  name: string;
  /** lodged.json for startSite. */
  lodged: Record<string, unknown> | undefined;
  /** What came_on() notes for a request that took this path. */
  cameOn: 'fd3' | 'app-socket';
}
export const REQUEST_PATHS: readonly RequestPath[] = [
  { name: "lodged's path", lodged: { direct: false }, cameOn: 'fd3' },
  { name: 'straight to the app', lodged: { direct: true }, cameOn: 'app-socket' },
];

/**
 * One list of cases per path, the two side by side (each its own site): the cost of
 * running a file twice is mostly waiting (grace periods, back-offs), not work.
 */
export function forEachPath(cases: (via: RequestPath) => void): void {
  describe("lodged's path and straight to the app, side by side", { concurrency: true }, () => {
    // Within a path, one case at a time (the child inherits the concurrency otherwise).
    for (const via of REQUEST_PATHS) describe(via.name, { concurrency: 1 }, () => cases(via));
  });
}

/** One list of cases per Apache (forEachApache) and per path (forEachPath). */
export function forEachApacheAndPath(cases: (apache: ApacheVersion, via: RequestPath) => void): void {
  forEachApache((apache) => forEachPath((via) => cases(apache, via)));
}

/** How the app's worker took the last request for `p` it saw (came_on()): `fd3 /p`, `app-socket /p`. */
function lastCameOn(site: Site, tenant: string, p: string): string | undefined {
  const file = path.join(site.root, tenant, 'came-on.log');
  const lines = (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n');
  return lines.filter((l) => l.endsWith(` ${p}`)).pop();
}

/**
 * Asserts that the app's worker took the last request for `p` on `via`'s path: so
 * that a case meant straight to the app cannot pass through lodged unnoticed.
 */
export function assertCameOn(site: Site, tenant: string, p: string, via: RequestPath): void {
  assert.equal(lastCameOn(site, tenant, p), `${via.cameOn} ${p}`, `the request for ${p} took ${via.name}`);
}

/**
 * Sends (send(), a request for `p`) until the app's worker takes one on `via`'s path.
 * Straight to the app, lodged serves an app's requests itself until one of its
 * workers is ready, and again once none is (after a kill); then it sends mod_lodge
 * to the app's socket.
 */
export async function untilOnPath(site: Site, tenant: string, p: string, via: RequestPath, send: () => Promise<unknown>): Promise<void> {
  await eventually(async () => {
    await send();
    return lastCameOn(site, tenant, p) === `${via.cameOn} ${p}`;
  }, `a request for ${p} took ${via.name}`);
}

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
