import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BoardFile, createBoard, removeBoard } from '../sidecar/src/scoreboard/board-file';
import * as L from '../sidecar/src/scoreboard/layout';
import { BoardReader, SlotView } from '../sidecar/src/scoreboard/reader';
import { WSGI_RUNTIME } from '../sidecar/src/pool/worker-process';
import { PROMETHEUS_BUCKETS, fineUpper } from '../sidecar/src/status/latency';
import { createUser, removeUser } from './helpers/users';

const PYTHON = '/usr/bin/python3';
const RUNTIMES = path.dirname(WSGI_RUNTIME);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-board-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
function board(slots: number): BoardFile {
  return createBoard(path.join(dir, `board-${n++}`), slots);
}

function python(code: string, stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe']): ChildProcess {
  return spawn(PYTHON, ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(RUNTIMES)})\n${code}`], { stdio });
}

function pythonSync(code: string): string {
  const r = spawnSync(PYTHON, ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(RUNTIMES)})\n${code}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

test('the writer in Python and the reader in TypeScript hold the same layout and the same latency buckets', () => {
  const py = JSON.parse(
    pythonSync(`
import json
from _lodge_runtime import scoreboard as s
ns = [0, 1, 99_999, 100_000, 100_001, 4_999_999, 5_000_000, 5_000_001, 59_999_999_999, 60_000_000_000, 60_000_000_001, 10**13]
import random
random.seed(7)
ns += [int(10 ** random.uniform(3, 11)) for _ in range(2000)]
print(json.dumps(dict(magic=s.MAGIC.decode(), version=s.VERSION, header=s.HEADER_SIZE, seq=s.SEQ_SIZE, slot=s.SLOT_SIZE,
  methodMax=s.METHOD_MAX, pathMax=s.PATH_MAX, classes=s.STATUS_CLASSES, prom=list(s.PROM_BOUNDS), fine=s.FINE_BUCKETS,
  fineBase=s.FINE_BASE, off=s.OFF, hdr=s.HDR, states=list(s.STATES), flagCut=s.FLAG_PATH_CUT,
  buckets=[[n, *s.buckets(n)] for n in ns])))
`),
  );
  const { buckets, ...numbers } = py;
  assert.deepEqual(numbers, {
    magic: L.MAGIC.toString('latin1'),
    version: L.VERSION,
    header: L.HEADER_SIZE,
    seq: L.SEQ_SIZE,
    slot: L.SLOT_SIZE,
    methodMax: L.METHOD_MAX,
    pathMax: L.PATH_MAX,
    classes: L.STATUS_CLASSES,
    prom: PROMETHEUS_BUCKETS,
    fine: L.FINE_BUCKETS,
    fineBase: L.FINE_BASE,
    off: L.SLOT,
    hdr: L.HEADER,
    states: L.STATES,
    flagCut: L.FLAG_PATH_CUT,
  });
  // latency.ts's own buckets: the fine one whose bound is the first >= the duration, the last unbounded.
  assert.equal(fineUpper(L.FINE_BUCKETS - 1), Infinity);
  assert.ok(Number.isFinite(fineUpper(L.FINE_BUCKETS - 2)));
  for (const [ns, fine, prom] of buckets as number[][]) {
    const s = ns / 1e9;
    let f = 0;
    while (s > fineUpper(f)) f++;
    let p = 0;
    while (p < PROMETHEUS_BUCKETS.length && s > PROMETHEUS_BUCKETS[p]) p++;
    assert.deepEqual([fine, prom], [f, p], `${ns} ns`);
  }
});

test('lodged makes the board 0600, sized for its slots, header written; never over a file or a link that is there', () => {
  const b = board(64);
  const st = fs.fstatSync(b.fd);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.size, L.geometry(64).size);
  assert.equal(st.uid, process.getuid!());
  const r = new BoardReader(b.fd, b.geometry).read();
  assert.equal(r.headerOk, true);
  assert.equal(r.slots.length, 64);
  assert.ok(r.slots.every((s) => s.consistent && s.valid && s.state === 'empty' && s.requests === 0));
  assert.throws(() => createBoard(b.path, 4), { code: 'EEXIST' });
  const link = path.join(dir, 'link');
  fs.symlinkSync(path.join(dir, 'elsewhere'), link);
  assert.throws(() => createBoard(link, 4), { code: 'EEXIST' });
  assert.equal(fs.existsSync(path.join(dir, 'elsewhere')), false, 'nothing was made where the link leads');
  assert.throws(() => L.geometry(0), RangeError);
  assert.throws(() => L.geometry(L.MAX_SLOTS + 1), RangeError);
  removeBoard(b);
});

test('a worker writes its slot through the descriptor it inherited; what it wrote reads back field by field', async () => {
  const b = board(4);
  const child = python(
    `
import os
from _lodge_runtime.scoreboard import Scoreboard, IDLE, LEAVING
s = Scoreboard.open(3, 2)
s.claim(4242, 7)
s.set_state(IDLE)
s.begin('GET', '/a')
s.end(200)
s.begin(b'POST', b'/upload/' + b'x' * 200)
s.end(404)
s.begin('DELETE', '/now\\x1b[2J')
if os.get_inheritable(3):
    raise SystemExit('a program the app runs would inherit the board')
`,
    ['ignore', 'pipe', 'pipe', b.fd],
  );
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  assert.equal(await exited(child), 0, err);
  const s = new BoardReader(b.fd, b.geometry).read().slots[2];
  assert.equal(s.consistent && s.valid, true);
  assert.equal(s.pid, 4242);
  assert.equal(s.generation, 7);
  assert.equal(s.state, 'busy');
  assert.equal(s.requestId, 3);
  assert.equal(s.requests, 2);
  assert.equal(s.method, 'DELETE');
  assert.equal(s.path, '/now\\x1b[2J', 'control characters come out escaped');
  assert.deepEqual(s.statusClass, [0, 1, 0, 1, 0, 0]);
  assert.equal(s.prom.reduce((a, c) => a + c, 0), 2);
  assert.equal(s.fine.reduce((a, c) => a + c, 0), 2);
  assert.ok(s.sinceNs > 0 && s.sinceNs <= Number(process.hrtime.bigint()), 'the start is on lodged\'s clock (CLOCK_MONOTONIC)');
  assert.ok(s.latencySumNs >= 0);
  removeBoard(b);
});

test('a worker running as its tenant writes the board through the descriptor it inherited, and cannot open, reopen or chmod it', async () => {
  const tenant = createUser();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-boards-'));
  try {
    fs.chmodSync(root, 0o700);
    const b = createBoard(path.join(root, 'pool'), 2);
    const child = spawn(
      PYTHON,
      [
        '-c',
        `import os, sys; sys.path.insert(0, ${JSON.stringify(RUNTIMES)})
from _lodge_runtime.scoreboard import Scoreboard
s = Scoreboard.open(3, 1)
s.claim(os.getpid(), 1)
s.begin('GET', '/mine')
refused = []
for what, call in [('open', lambda: os.open(${JSON.stringify(path.join(root, 'pool'))}, os.O_RDWR)),
                   ('reopen', lambda: os.open('/proc/self/fd/3', os.O_RDWR)),
                   ('chmod', lambda: os.fchmod(3, 0o666)),
                   ('chown', lambda: os.fchown(3, os.getuid(), os.getgid()))]:
    try:
        call()
    except PermissionError:
        refused.append(what)
print(' '.join(refused))
`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe', b.fd], uid: tenant.uid, gid: tenant.gid, cwd: '/' },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    assert.equal(await exited(child), 0, err);
    assert.equal(out.trim(), 'open reopen chmod chown');
    const s = new BoardReader(b.fd, b.geometry).read().slots[1];
    assert.equal(s.pid, child.pid);
    assert.equal(s.path, '/mine');
    const st = fs.fstatSync(b.fd);
    assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o600], 'still root\'s, still 0600');
    removeBoard(b);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    await removeUser(tenant);
  }
});

test('a long path is cut at PATH_MAX and says so; the worker refuses a board that is not one, or a slot it does not have', () => {
  const b = board(2);
  pythonSync(`
from _lodge_runtime.scoreboard import Scoreboard, ScoreboardError
s = Scoreboard.open(${JSON.stringify(b.path)}, 1)
s.claim(1, 1)
s.begin(b'GET', b'/' + b'y' * 500)
for bad in [(${JSON.stringify(b.path)}, 2), (${JSON.stringify(b.path)}, -1), ('/etc/hostname', 0)]:
    try:
        Scoreboard.open(*bad)
    except ScoreboardError:
        continue
    raise SystemExit('opened %r' % (bad,))
try:
    s.set_state(3)
except ValueError:
    pass
else:
    raise SystemExit('set_state(BUSY) was taken')
`);
  const s = new BoardReader(b.fd, b.geometry).read().slots[1];
  assert.equal(s.path.length, L.PATH_MAX);
  assert.equal(s.pathCut, true);
  removeBoard(b);
});

// What the writer below keeps true of every slot at every instant between two changes.
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const STATUSES = [200, 404, 302, 500, 101, 0, 201];
function pathOf(rid: number): string {
  return `/r/${rid}/` + 'p'.repeat(rid % 150);
}
function expectedClasses(ended: number): number[] {
  const c = [0, 0, 0, 0, 0, 0];
  for (let rid = 1; rid <= ended; rid++) {
    const st = STATUSES[rid % STATUSES.length];
    c[st >= 100 && st <= 599 ? Math.floor(st / 100) - 1 : 5]++;
  }
  return c;
}
function checkSlot(s: SlotView, pid: number, gen: number): string | undefined {
  if (s.pid !== pid || s.generation !== gen) return `pid ${s.pid} generation ${s.generation}`;
  if (s.state === 'starting') return s.requestId === 0 && s.requests === 0 ? undefined : 'counts while starting';
  const ended = s.requests;
  if (s.state === 'busy' ? s.requestId !== ended + 1 : s.requestId !== ended) return `${s.state}: request ${s.requestId}, ${ended} ended`;
  if (s.requestId === 0) return s.path === '' && s.method === '' ? undefined : 'a path before any request';
  const want = pathOf(s.requestId);
  if (s.path !== want.slice(0, L.PATH_MAX) || s.pathCut !== want.length > L.PATH_MAX) return `request ${s.requestId} has path ${s.path}`;
  if (s.method !== METHODS[s.requestId % METHODS.length]) return `request ${s.requestId} has method ${s.method}`;
  if (s.statusClass.join() !== expectedClasses(ended).join()) return `classes ${s.statusClass} after ${ended}`;
  const sum = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0);
  if (sum(s.prom) !== ended || sum(s.fine) !== ended) return `buckets ${sum(s.prom)}, ${sum(s.fine)} after ${ended}`;
  return undefined;
}

test('three Python workers write while lodged reads: no read ever takes half of one change and half of another', async (t) => {
  const b = board(8);
  const ITERATIONS = 60_000;
  const writers = [1, 4, 6].map((slot, k) => {
    const child = python(
      `
import os
from _lodge_runtime.scoreboard import Scoreboard, IDLE
methods = ${JSON.stringify(METHODS)}
statuses = ${JSON.stringify(STATUSES)}
s = Scoreboard.open(${k === 0 ? 3 : JSON.stringify(b.path)}, ${slot})
s.claim(os.getpid(), ${slot * 10})
s.set_state(IDLE)
for rid in range(1, ${ITERATIONS} + 1):
    s.begin(methods[rid % 4], '/r/%d/' % rid + 'p' * (rid % 150))
    s.end(statuses[rid % ${STATUSES.length}])
`,
      ['ignore', 'pipe', 'pipe', b.fd],
    );
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    return { slot, child, gen: slot * 10, done: exited(child).then((code) => ({ code, err })) };
  });
  const reader = new BoardReader(b.fd, b.geometry);
  let running = writers.length;
  for (const w of writers) void w.done.then(() => running--);
  let reads = 0;
  let retried = 0;
  let torn = 0;
  let busySeen = 0;
  const wrong: string[] = [];
  while (running > 0) {
    for (let k = 0; k < 50; k++) {
      const snap = reader.read();
      reads++;
      retried += snap.retried;
      for (const w of writers) {
        const s = snap.slots[w.slot];
        if (s.state === 'empty') continue;
        if (!s.consistent) {
          torn++;
          continue;
        }
        if (s.state === 'busy') busySeen++;
        const why = checkSlot(s, w.child.pid!, w.gen);
        if (why && wrong.length < 10) wrong.push(`slot ${w.slot}, read ${reads}: ${why}`);
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  for (const w of writers) assert.deepEqual(await w.done, { code: 0, err: '' });
  t.diagnostic(`${reads} reads, ${busySeen} busy slots seen, ${retried} slots read again, ${torn} given up as torn`);
  assert.deepEqual(wrong, [], 'every whole read is one instant of the writer');
  const last = reader.read();
  for (const w of writers) {
    assert.equal(last.slots[w.slot].requests, ITERATIONS);
    assert.equal(checkSlot(last.slots[w.slot], w.child.pid!, w.gen), undefined);
  }
  // Not vacuous: the reads overlapped the writes (busy slots seen, some met mid-write).
  assert.ok(reads > 100 && busySeen > 0, `${reads} reads, ${busySeen} busy slots seen`);
  assert.ok(retried > 0, `${retried} slots met mid-write and read again (${torn} given up)`);
  for (const k of [0, 2, 3, 5, 7]) assert.equal(last.slots[k].state, 'empty', 'nobody wrote outside its slot');
  removeBoard(b);
});

test('a board full of a tenant\'s random bytes reads as bounded, valid values and never throws', () => {
  const b = board(16);
  const reader = new BoardReader(b.fd, b.geometry);
  const size = b.geometry.size;
  const cases: Array<(buf: Buffer) => Buffer> = [
    (buf) => buf,
    (buf) => (L.encodeHeader(b.geometry).copy(buf, 0), buf), // a right header, random slots
    (buf) => {
      // every sequence number odd: mid-write for ever
      for (let i = 0; i < 16; i++) buf.writeUInt32LE((buf.readUInt32LE(b.geometry.seqOffset + i * 8) | 1) >>> 0, b.geometry.seqOffset + i * 8);
      return buf;
    },
    (buf) => {
      // all ones: every length, count and state at its largest
      buf.fill(0xff);
      for (let i = 0; i < 16; i++) buf.writeUInt32LE(0, b.geometry.seqOffset + i * 8 + 4), buf.writeUInt32LE(0xfffffffe, b.geometry.seqOffset + i * 8);
      return buf;
    },
    (buf) => buf.subarray(0, 10), // truncated by the tenant
    (buf) => buf.subarray(0, b.geometry.slotsOffset + 700),
    () => Buffer.alloc(0),
  ];
  const MAX = Number.MAX_SAFE_INTEGER;
  let checked = 0;
  for (let round = 0; round < 300; round++) {
    const bytes = cases[round % cases.length](randomBytes(size));
    fs.ftruncateSync(b.fd, 0);
    fs.writeSync(b.fd, bytes, 0, bytes.length, 0);
    const snap = reader.read();
    if (round % cases.length === 0) assert.equal(snap.headerOk, false);
    assert.equal(snap.slots.length, 16);
    for (const s of snap.slots) {
      assert.ok((L.STATES as readonly string[]).includes(s.state) || s.state === 'invalid', s.state);
      assert.ok(s.method.length <= L.METHOD_MAX && /^[A-Za-z0-9_?-]*$/.test(s.method), s.method);
      assert.ok(!/[\x00-\x1f\x7f-\x9f]/.test(s.path), 'no control character reaches lodged');
      assert.ok(s.path.length <= 4 * L.PATH_MAX);
      assert.ok(s.pid >= 0 && s.pid <= 4_194_304);
      for (const v of [s.generation, s.requestId, s.sinceNs, s.requests, s.latencySumNs, ...s.statusClass, ...s.prom, ...s.fine]) {
        assert.ok(Number.isInteger(v) && v >= 0 && v <= MAX, String(v));
      }
      assert.ok(s.sinceNs <= snap.nowNs);
      assert.equal(s.statusClass.length, L.STATUS_CLASSES);
      assert.equal(s.prom.length, L.PROM_BUCKETS);
      assert.equal(s.fine.length, L.FINE_BUCKETS);
      if (s.state === 'invalid') assert.equal(s.valid, false);
      checked++;
    }
    if (round % cases.length === 2) assert.ok(snap.slots.every((s) => !s.consistent), 'a slot kept mid-write is said to be torn');
  }
  assert.equal(checked, 300 * 16);
  removeBoard(b);
});
