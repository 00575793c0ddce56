import * as fs from 'node:fs';
import * as net from 'node:net';
import { log } from '../log';
import { getPeerCred, socketFd } from '../posix';
import { CONTROL_LINE_MAX, ControlAnswer, ControlRequest, controlRequest } from '../status/control-protocol';
import type { StatusSource } from '../status/schema';

/** A client has this long to send its request line (a slow one holds nothing after). */
export const CONTROL_REQUEST_MS = 5000;
/** And this long to read the answer, once it is written. */
export const CONTROL_ANSWER_MS = 30_000;
/** Connections open at once, all peers but root, and per uid: a tenant cannot crowd root out. */
export const CONTROL_MAX = 64;
export const CONTROL_PER_UID = 4;

/**
 * The control socket `lodge status` reads: mode 0666, since any local user may ask
 * about their own apps; who asks is the peer's uid (SO_PEERCRED), never anything it
 * says. Root sees everything, any other uid only its own apps and their events.
 *
 * It is served by lodged's own loop, apart from the request path: a snapshot reads
 * the pools' counters and never waits for a worker, so it answers while every
 * worker is busy and every queue full.
 *
 *   accept ─▶ peer uid ─▶ one line (≤ CONTROL_LINE_MAX, within CONTROL_REQUEST_MS)
 *          ─▶ zod ─▶ one JSON answer line ─▶ close (read within CONTROL_ANSWER_MS)
 *
 * Anything else (a longer line, bytes that are not JSON, a request no schema admits,
 * silence) gets one error line and the socket closed.
 */
export async function listenControl(path: string, source: StatusSource): Promise<net.Server> {
  const open = new Map<number, number>();
  let total = 0;
  const server = net.createServer((socket) => {
    let uid: number;
    try {
      uid = getPeerCred(socketFd(socket)).uid;
    } catch (err) {
      log.error(`control socket: cannot check a peer: ${(err as Error).message}; refused`);
      socket.destroy();
      return;
    }
    const mine = open.get(uid) ?? 0;
    if (uid !== 0 && (mine >= CONTROL_PER_UID || total >= CONTROL_MAX)) {
      socket.on('error', () => socket.destroy());
      socket.setTimeout(CONTROL_REQUEST_MS, () => socket.destroy());
      socket.end(answerLine({ ok: false, error: `too many status connections open (uid ${uid}: ${mine}, in all: ${total}); try again` }));
      return;
    }
    open.set(uid, mine + 1);
    total++;
    socket.once('close', () => {
      const n = (open.get(uid) ?? 1) - 1;
      if (n > 0) open.set(uid, n);
      else open.delete(uid);
      total--;
    });
    serveControl(socket, uid, source);
  });
  server.on('error', (err) => log.error(`control socket ${path}: ${err.message}`));
  removeOldControl(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const umask = process.umask(0o111);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  fs.chmodSync(path, 0o666);
  return server;
}

function serveControl(socket: net.Socket, uid: number, source: StatusSource): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const finish = (a: ControlAnswer) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.pause();
    socket.removeAllListeners('data');
    // The answer's own deadline: a client that never reads holds it no longer.
    socket.setTimeout(CONTROL_ANSWER_MS, () => socket.destroy());
    socket.end(answerLine(a));
  };
  const timer = setTimeout(() => finish({ ok: false, error: `no request line within ${CONTROL_REQUEST_MS / 1000} s` }), CONTROL_REQUEST_MS);
  socket.on('error', (err) => log.debug(`control socket (uid ${uid}): ${err.message}`));
  socket.on('close', () => clearTimeout(timer));
  socket.on('data', (chunk: Buffer) => {
    const nl = chunk.indexOf(0x0a);
    const take = nl >= 0 ? chunk.subarray(0, nl) : chunk;
    size += take.length;
    if (size > CONTROL_LINE_MAX) return finish({ ok: false, error: `a request line is at most ${CONTROL_LINE_MAX} bytes` });
    chunks.push(take);
    if (nl < 0) return;
    finish(answer(Buffer.concat(chunks).toString('utf8'), uid, source));
  });
  socket.on('end', () => finish({ ok: false, error: 'the request line ended without a newline' }));
}

/** One request line's answer, for a peer of `uid`. */
export function answer(line: string, uid: number, source: StatusSource): ControlAnswer {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, error: 'the request is not JSON: send {"op":"status"} and a newline' };
  }
  const r = controlRequest.safeParse(raw);
  if (!r.success) return { ok: false, error: `not a request: expected {"op":"status"}, {"op":"restart","root":"/…"} or {"op":"stop","pid":N}` };
  const filter = uid === 0 ? {} : { uid };
  const req: ControlRequest = r.data;
  switch (req.op) {
    case 'status':
      return { ok: true, status: source.snapshot(filter) };
    case 'restart':
      return { ok: true, done: source.restartApp(req.root, filter) };
    case 'stop':
      return { ok: true, done: source.stopWorker(req.pid, filter) };
  }
}

function answerLine(a: ControlAnswer): string {
  return `${JSON.stringify(a)}\n`;
}

// lodged's own socket is bound first, and refuses to start beside a live lodged; so a
// control socket left here is a dead lodged's. Anything but a socket is not ours.
function removeOldControl(path: string): void {
  const st = fs.lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; not touching it`);
  fs.unlinkSync(path);
}
