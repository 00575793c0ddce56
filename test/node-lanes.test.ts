import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, StdioOptions, execFileSync, spawn } from 'node:child_process';
import { FrameReader } from '../sidecar/src/protocol/frame-reader';
import { ABORT_FRAME, BODY_END_FRAME, FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import { LANE_FD_FIRST, WORKER_EXIT_PROTOCOL, WORKER_FD } from '../sidecar/src/protocol/constants';
import { socketPair } from '../sidecar/src/posix';
import { TestUser, createUser, removeUser } from './helpers/users';

// The Node worker's lanes (PROTOCOL.md, "Lanes: several requests in flight per worker"),
// with the test in lodged's place: the real runtime, started as a tenant by lodge-spawn,
// its lanes real socket pairs on fd 3 and 6, 7...; no Apache, no lodged.

const SPAWN = path.join(__dirname, '..', '..', 'build', 'Release', 'lodge-spawn');
const RUNTIME = path.join(__dirname, '..', 'sidecar', 'src', 'runtime-node', 'main.js');

// /slow sends its head at once and its body after 500 ms; /hang sends its head and no more,
// and tells /stream when its client is gone; /stream sends a first part at once and its
// last part once /hang (or /forever, which writes until its client is gone) was cut off.
// A head seen says the app has the request in hand.
const APP = `
const http = require('http');
let cut;
const hangCut = new Promise((r) => (cut = r));
const server = http.createServer((req, res) => {
  if (req.url === '/slow' || req.url === '/hang') res.flushHeaders();
  if (req.url === '/slow') return void setTimeout(() => res.end('slow'), 500);
  if (req.url === '/hang') return void res.on('close', () => cut());
  if (req.url === '/forever') {
    const t = setInterval(() => res.write('x'), 5);
    return void res.on('close', () => (clearInterval(t), cut()));
  }
  if (req.url === '/stream') {
    res.write('before abort;');
    return void hangCut.then(() => res.end('after abort'));
  }
  res.end('fast ' + req.url);
});
// A WebSocket handshake becomes a raw echo: what the client sends comes back.
server.on('upgrade', (req, socket) => {
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n');
  socket.on('data', (d) => socket.write(d));
  socket.on('end', () => socket.end());
});
setTimeout(() => server.listen(process.env.PORT || 3000), Number(process.env.LISTEN_DELAY || 0));
`;

let user: TestUser;
let appDir: string;

before(() => {
  user = createUser('lodgeln');
  appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-lanes-'));
  fs.writeFileSync(path.join(appDir, 'server.js'), APP);
  fs.chmodSync(appDir, 0o755);
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, appDir]);
});

after(async () => {
  await removeUser(user);
  fs.rmSync(appDir, { recursive: true, force: true });
});

let finished = 0;

/** lodged's end of one lane: the frames the worker sent on it, and whether it closed its end. */
class LodgedEnd {
  frames: Array<{ type: number; payload: Buffer; seq?: number }> = [];
  eof = false;
  private wake: Array<() => void> = [];

  constructor(readonly sock: net.Socket) {
    const reader = new FrameReader((type, frame) => {
      const f = { type, payload: Buffer.from(frame.subarray(8)), seq: undefined as number | undefined };
      if (type === FrameType.END || type === FrameType.ERROR) f.seq = finished++;
      this.frames.push(f);
      this.poke();
    });
    sock.on('data', (c: Buffer) => reader.push(c));
    sock.on('end', () => {
      this.eof = true;
      this.poke();
    });
    sock.on('error', () => this.poke());
  }

  private poke(): void {
    for (const w of this.wake.splice(0)) w();
  }

  async until(what: () => boolean): Promise<void> {
    while (!what()) await new Promise<void>((r) => this.wake.push(r));
  }

  async untilFrame(type: number): Promise<void> {
    await this.until(() => this.frames.some((f) => f.type === type));
  }

  send(frame: Buffer): void {
    this.sock.write(frame);
  }

  /** A bodyless GET: REQ, then BODY_END as lodged sends it; a WebSocket handshake has no BODY_END. */
  get(url: string, upgrade = false): void {
    const pairs: Array<[string, string]> = [
      ['REQUEST_METHOD', 'GET'],
      ['REQUEST_URI', url],
      ['SERVER_PROTOCOL', 'HTTP/1.1'],
      ['HTTP_HOST', 'lanes.example'],
      ['REMOTE_ADDR', '192.0.2.7'],
      ['REMOTE_PORT', '40000'],
    ];
    if (upgrade) pairs.push(['HTTP_UPGRADE', 'websocket'], ['HTTP_CONNECTION', 'Upgrade']);
    this.send(encodeFrame(FrameType.REQ, encodePairs(pairs)));
    if (!upgrade) this.send(BODY_END_FRAME);
  }

  /** The response that began at frame `from`: its status, body, last frame type and finishing order. */
  async response(from = 0): Promise<{ status: number; body: string; last: number; seq: number; next: number }> {
    const end = () => this.frames.findIndex((f, i) => i >= from && (f.type === FrameType.END || f.type === FrameType.ERROR));
    await this.until(() => end() >= 0 || this.eof);
    const i = end();
    assert.ok(i >= 0, 'the lane closed before its response ended');
    const mine = this.frames.slice(from, i + 1);
    const head = mine.find((f) => f.type === FrameType.HEAD);
    const body = Buffer.concat(mine.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)).toString();
    return { status: head ? head.payload.readUInt16BE(0) : 0, body, last: mine[mine.length - 1].type, seq: mine[mine.length - 1].seq!, next: i + 1 };
  }
}

interface Worker {
  child: ChildProcess;
  lanes: LodgedEnd[];
  exited: Promise<number | string | null>;
  stderr: () => string;
}

/** The runtime as lodged starts it, with `count` lanes given and START's pairs `extra` besides root, entry and log. */
function startWorker(count: number, extra: Array<[string, string]> = []): Worker {
  const pairs = Array.from({ length: count }, () => socketPair());
  // Every slot filled: spawn drops the holes of a sparse stdio array, moving the later fds down.
  const stdio: StdioOptions = Array.from({ length: count > 1 ? LANE_FD_FIRST + count - 1 : WORKER_FD + 1 }, (_, i) => (i === 2 ? 'pipe' : 'ignore'));
  pairs.forEach(([, theirs], i) => (stdio[i === 0 ? WORKER_FD : LANE_FD_FIRST + i - 1] = theirs));
  const child = spawn(SPAWN, ['--uid', String(user.uid), '--gid', String(user.gid), '--', process.execPath, RUNTIME], {
    cwd: '/',
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
    stdio,
  });
  for (const [, theirs] of pairs) fs.closeSync(theirs);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const lanes = pairs.map(([mine]) => new LodgedEnd(new net.Socket({ fd: mine, readable: true, writable: true, allowHalfOpen: true })));
  const start: Array<[string, string]> = [['root', appDir], ['entry', 'server.js'], ['log', 'logs/lodge.log'], ...extra];
  lanes[0].send(encodeFrame(FrameType.START, encodePairs(start)));
  return { child, lanes, exited, stderr: () => err };
}

async function ready(w: Worker): Promise<void> {
  await w.lanes[0].until(() => w.lanes[0].frames.length > 0 || w.lanes[0].eof);
  assert.equal(w.lanes[0].frames[0]?.type, FrameType.READY, `READY on lane 0 (stderr: ${w.stderr()})`);
}

/** Runs `body` on a started worker, then closes lodged's end of every lane. */
async function withWorker(count: number, extra: Array<[string, string]>, body: (w: Worker) => Promise<void>): Promise<Worker> {
  const w = startWorker(count, extra);
  try {
    await body(w);
  } finally {
    for (const l of w.lanes) l.sock.destroy();
  }
  return w;
}

const tenantLog = (): string => fs.readFileSync(path.join(appDir, 'logs', 'lodge.log'), 'utf8');

test('lanes=3: a slow request on lane 0 does not hold a fast one on lane 1', async () => {
  const w = await withWorker(3, [['lanes', '3']], async (w) => {
    await ready(w);
    for (const l of w.lanes.slice(1)) assert.equal(l.frames.length, 0, 'nothing but on lane 0 before READY');
    w.lanes[0].get('/slow');
    w.lanes[1].get('/one');
    w.lanes[2].get('/two');
    const [slow, one, two] = await Promise.all(w.lanes.map((l) => l.response()));
    assert.deepEqual([slow.status, slow.body], [200, 'slow']);
    assert.deepEqual([one.status, one.body], [200, 'fast /one']);
    assert.deepEqual([two.status, two.body], [200, 'fast /two']);
    assert.ok(one.seq < slow.seq && two.seq < slow.seq, 'both fast requests ended before the slow one');
    // Each lane goes on as a channel of its own: the next request on lane 0 is its own.
    w.lanes[0].get('/again');
    assert.equal((await w.lanes[0].response(slow.next)).body, 'fast /again');
  });
  assert.equal(await w.exited, 0, 'every lane closed: the worker leaves');
});

test('ABORT on one lane ends only its request: the stream on the other lane goes on to its end', async () => {
  await withWorker(2, [['lanes', '2']], async (w) => {
    await ready(w);
    const [hang, stream] = w.lanes;
    hang.get('/hang');
    stream.get('/stream');
    await stream.untilFrame(FrameType.DATA);
    await hang.untilFrame(FrameType.HEAD);
    hang.send(ABORT_FRAME);
    const cut = await hang.response();
    assert.deepEqual([cut.status, cut.body, cut.last], [200, '', FrameType.END], 'the aborted request: its head, then END');
    const streamed = await stream.response();
    assert.equal(streamed.last, FrameType.END);
    assert.equal(streamed.body, 'before abort;after abort', "the app's side of /hang closed, the stream finished");
    hang.get('/after');
    assert.equal((await hang.response(cut.next)).body, 'fast /after', 'the aborted lane serves again');
  });
});

test('a tunnel on lane 1 holds that lane only: lane 0 serves while it is open', async () => {
  await withWorker(2, [['lanes', '2']], async (w) => {
    await ready(w);
    const [l0, l1] = w.lanes;
    l1.get('/ws', true);
    await l1.untilFrame(FrameType.HEAD);
    assert.equal(l1.frames[0].payload.readUInt16BE(0), 101);
    l1.send(encodeFrame(FrameType.BODY, Buffer.from('ping')));
    await l1.untilFrame(FrameType.DATA);
    l0.get('/beside');
    assert.equal((await l0.response()).body, 'fast /beside');
    l1.send(BODY_END_FRAME); // the client left: the app's end closes, END follows
    const t = await l1.response();
    assert.deepEqual([t.status, t.body, t.last], [101, 'ping', FrameType.END]);
  });
});

test('EOF on an idle lane closes it alone; a busy lane answers first; every lane closed: exit 0', async () => {
  await withWorker(3, [['lanes', '3']], async (w) => {
    await ready(w);
    const [l0, l1, l2] = w.lanes;
    l1.sock.end(); // lodged's end closed, lane idle
    await l1.until(() => l1.eof);
    l0.get('/zero');
    l2.get('/two');
    const zero = await l0.response();
    const two = await l2.response();
    assert.deepEqual([zero.body, two.body], ['fast /zero', 'fast /two']);
    // EOF with a request in hand (its other end still held, as mod_lodge holds a borrowed lane).
    l2.get('/slow');
    l2.sock.end();
    const slow = await l2.response(two.next);
    assert.deepEqual([slow.status, slow.body, slow.last], [200, 'slow', FrameType.END]);
    await l2.until(() => l2.eof);
    l0.get('/still');
    assert.equal((await l0.response(zero.next)).body, 'fast /still', 'lane 0 serves on');
    assert.equal(w.child.exitCode, null, 'the worker lives while a lane is open');
    l0.sock.end();
    assert.equal(await w.exited, 0, 'every lane closed, nothing in hand');
  });
});

test('a lane closed under a streaming response: the failed write ends that request only', async () => {
  await withWorker(3, [['lanes', '3']], async (w) => {
    await ready(w);
    const [l0, l1, l2] = w.lanes;
    l2.get('/stream');
    await l2.untilFrame(FrameType.DATA);
    l1.get('/forever');
    await l1.untilFrame(FrameType.DATA);
    l1.sock.destroy(); // nobody holds lane 1 any more: the worker's next write to it fails
    const streamed = await l2.response();
    assert.equal(streamed.body, 'before abort;after abort', "the app's side of /forever was closed");
    l0.get('/zero');
    assert.equal((await l0.response()).body, 'fast /zero');
  });
});

test('SIGTERM with a request in hand: idle lanes close at once, the busy one answers, then exit 0', async () => {
  await withWorker(2, [['lanes', '2']], async (w) => {
    await ready(w);
    const [busy, idle] = w.lanes;
    busy.get('/slow');
    await busy.untilFrame(FrameType.HEAD);
    w.child.kill('SIGTERM');
    await idle.until(() => idle.eof);
    const slow = await busy.response();
    assert.deepEqual([slow.body, slow.last], ['slow', FrameType.END]);
    assert.equal(await w.exited, 0);
  });
});

/** The worker exits 2 without READY, and `said()` (its stderr or the tenant's log) says why. */
async function refused(count: number, extra: Array<[string, string]>, why: RegExp, said: (w: Worker) => string, early?: (w: Worker) => void): Promise<void> {
  await withWorker(count, extra, async (w) => {
    early?.(w);
    assert.equal(await w.exited, WORKER_EXIT_PROTOCOL);
    assert.equal(w.lanes[0].frames.length, 0, 'no READY');
    assert.match(said(w), why);
  });
}

for (const bad of ['0', '65', 'abc', '03', '']) {
  test(`START lanes='${bad}' is a protocol error: exit 2`, async () => {
    await refused(1, [['lanes', bad]], /lanes must be a decimal from 1 to 64/, (w) => w.stderr());
  });
}

test('START lanes=3 with fd 7 not given: a protocol error, exit 2', async () => {
  await refused(2, [['lanes', '3']], /fd 7 \(lane 2\) is not a socket/, (w) => w.stderr());
});

test('a frame on lane 1 before READY is a protocol error: exit 2', async () => {
  // The app listens 3 s after it loaded: the worker is still loading when the REQ comes.
  await refused(2, [['lanes', '2'], ['env.LISTEN_DELAY', '3000']], /protocol error from lodged: lane 1: REQ frame is not expected here/, tenantLog, (w) => w.lanes[1].get('/early'));
});

for (const [name, extra] of [
  ['no lanes pair: one lane on fd 3, as before', []],
  ['lanes=1: the same one lane', [['lanes', '1']]],
] as Array<[string, Array<[string, string]>]>) {
  test(`${name}; EOF on fd 3 ends the worker`, async () => {
    await withWorker(1, extra, async (w) => {
      await ready(w);
      w.lanes[0].get('/a');
      const a = await w.lanes[0].response();
      w.lanes[0].get('/b');
      assert.deepEqual([a.body, (await w.lanes[0].response(a.next)).body], ['fast /a', 'fast /b']);
      w.lanes[0].sock.end();
      assert.equal(await w.exited, 0);
    });
  });
}
