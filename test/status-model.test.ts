import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AppBook } from '../sidecar/src/status/app-book';
import type { AppRecord } from '../sidecar/src/status/app-record';
import { EventRing } from '../sidecar/src/status/events';
import { PoolLike, RegistryLike, StatusModel, WorkerLike } from '../sidecar/src/status/model';
import { KillReason, statusSnapshot } from '../sidecar/src/status/schema';
import { answer } from '../sidecar/src/server/control';
import { FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import { UserNames } from '../sidecar/src/status/user-names';

const LIMITS = { timeout: 2, cpu: 5, memory: 64 << 20, processes: 2, idle: 60, tasks: 64, concurrency: 1 };
// Pids no process has (past the kernel's pid_max): the model finds no /proc entry.
let nextPid = 5_000_000;

class FakeWorker implements WorkerLike {
  readonly pid = nextPid++;
  readonly startedAt = Date.now();
  requests = 0;
  servedAt = 0;
  killed?: KillReason;
  constructor(public state: WorkerLike['state'], private req?: Buffer) {}
  statusView() {
    return { req: this.state === 'busy' ? this.req : undefined, lent: false, stopping: this.killed !== undefined };
  }
  kill(reason?: KillReason): void {
    this.killed = reason;
  }
}

class FakePool implements PoolLike {
  readonly spec;
  readonly identity;
  readonly workers = new Set<FakeWorker>();
  isRetired = false;
  readonly stats: AppRecord;
  queue = 0;
  constructor(book: AppBook, root: string, uid: number) {
    this.spec = { root, entry: 'app.py', kind: 'wsgi', limits: LIMITS };
    this.identity = { uid };
    this.stats = book.open(this.spec, uid);
  }
  statusView() {
    return { queue: this.queue, starting: [...this.workers].filter((w) => w.state === 'starting').length, reloading: false, generationOf: () => 0 };
  }
  retire(): void {
    this.isRetired = true;
  }
}

class FakeRegistry implements RegistryLike {
  readonly pools = new Map<string, PoolLike>();
}

function reqFrame(method: string, uri: string): Buffer {
  return encodeFrame(FrameType.REQ, encodePairs([['REQUEST_METHOD', method], ['REQUEST_URI', uri]]));
}

function setup() {
  const events = new EventRing(100);
  const book = new AppBook(100, events);
  const registry = new FakeRegistry();
  const model = new StatusModel(registry, { enforcement: () => 'FakeEnforcement', version: '0.0.0-test', book, users: new UserNames('/nonexistent') });
  return { book, events, registry, model };
}

test('tenants, apps and workers from the pools; counters from the records; the JSON validates', () => {
  const { book, registry, model } = setup();
  const a = new FakePool(book, '/srv/a/app', 2001);
  const b = new FakePool(book, '/srv/b/app', 2002);
  registry.pools.set('k1', a);
  registry.pools.set('k2', b);
  registry.pools.set('k3', b); // two APP frames, one pool
  const busy = new FakeWorker('busy', reqFrame('POST', '/cart?id=1'));
  busy.servedAt = Date.now() - 1500;
  a.workers.add(busy);
  a.workers.add(new FakeWorker('idle'));
  a.queue = 3;
  a.stats.queued(3);
  a.stats.ended(200, performance.now() - 5, false);
  a.stats.ended(504, performance.now(), false);
  a.stats.ended(503, 0, true);
  a.stats.workerExited({ pid: 1, startedAt: Date.now() - 60_000, exitReason: 'timeout', lastTold: 'GET /slow: took longer than LodgeTimeout 2 s' });
  const snap = statusSnapshot.parse(model.snapshot());
  assert.deepEqual(snap.tenants.map((t) => t.uid), [2001, 2002]);
  const app = snap.tenants[0].apps[0];
  assert.equal(app.state, 'running');
  assert.equal(app.workers.length, 2);
  assert.deepEqual(app.workers[0].current && { m: app.workers[0].current.method, p: app.workers[0].current.path }, { m: 'POST', p: '/cart?id=1' });
  assert.ok(app.workers[0].current!.elapsed >= 1.5);
  assert.deepEqual(app.queue, { now: 3, peak: 3 });
  assert.deepEqual({ ...app.requests }, { total: 3, '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 2, unseen: 0 });
  assert.equal(app.turnedAway, 1);
  assert.equal(app.kills.timeout, 1);
  assert.equal(app.restarts, 1);
  assert.equal(app.unstableRestarts, 0, 'it ran for a minute before it was killed');
  assert.equal(app.latency.count, 2, 'the turned-away request had no start time');
  assert.equal(snap.tenants[1].apps[0].state, 'idle-stopped');
  assert.equal(snap.events.length, 1);
  assert.match(snap.events[0].message, /^timeout: GET \/slow/);
});

test('a uid sees only its own apps and their events', () => {
  const { book, registry, model } = setup();
  const a = new FakePool(book, '/srv/a/app', 2001);
  const b = new FakePool(book, '/srv/b/app', 2002);
  registry.pools.set('a', a);
  registry.pools.set('b', b);
  a.stats.reloaded(1);
  b.stats.startFailed('app.py line 3: SyntaxError', 1000);
  // An event that names b's app under a's uid (a forged APP frame's clamp): not a's to see.
  book.get('/srv/b/app')!.uid = 2002;
  const mine = model.snapshot({ uid: 2001 });
  assert.deepEqual(mine.tenants.map((t) => t.uid), [2001]);
  assert.ok(mine.events.every((e) => e.app === '/srv/a/app'));
  assert.equal(mine.events.length, 1);
  assert.equal(mine.lodged.rss, undefined, 'lodged\'s own figures are the host\'s');
  const all = model.snapshot();
  assert.equal(all.events.length, 2);
  assert.equal(all.tenants[1].apps[0].state, 'crashed');
  assert.equal(all.tenants[1].apps[0].reason, 'app.py line 3: SyntaxError');
  assert.equal(model.restartApp('/srv/b/app', { uid: 2001 }), false, 'a cannot restart b');
  assert.equal(b.isRetired, false);
  assert.equal(model.restartApp('/srv/b/app', { uid: 2002 }), true);
  assert.equal(b.isRetired, true);
  const w = new FakeWorker('busy');
  a.workers.add(w);
  assert.equal(model.stopWorker(w.pid, { uid: 2002 }), false, 'b cannot stop a\'s worker');
  assert.equal(model.stopWorker(w.pid), true);
  assert.equal(w.killed, 'admin');
});

test('an app whose pool was reaped still shows, idle-stopped, with its counters', () => {
  const { book, registry, model } = setup();
  const a = new FakePool(book, '/srv/a/app', 2001);
  registry.pools.set('a', a);
  a.stats.ended(200, performance.now(), false);
  registry.pools.delete('a');
  const app = model.snapshot().tenants[0].apps[0];
  assert.equal(app.state, 'idle-stopped');
  assert.equal(app.requests.total, 1);
  assert.equal(app.workers.length, 0);
});

test('the book is bounded: past its size the app opened least recently is forgotten, a live pool still shows', () => {
  const { book, registry, model } = setup();
  const first = new FakePool(book, '/srv/first', 3000);
  registry.pools.set('first', first);
  for (let i = 0; i < 150; i++) new FakePool(book, `/srv/t${i}`, 3001 + i);
  assert.equal(book.size, 100);
  assert.equal(book.get('/srv/first'), undefined);
  assert.equal(book.get('/srv/t0'), undefined);
  const roots = model.snapshot().tenants.flatMap((t) => t.apps.map((a) => a.root));
  assert.equal(roots.length, 101);
  assert.ok(roots.includes('/srv/first'), 'its pool keeps its record');
});

test('a refused app shows as refused, with why, under the directory\'s owner', () => {
  const { book, model } = setup();
  book.refused({ root: '/srv/c/app', entry: 'app.py', kind: 'wsgi', limits: LIMITS }, 2003, '/srv/c/app is writable by group or others');
  const app = model.snapshot({ uid: 2003 }).tenants[0].apps[0];
  assert.equal(app.state, 'refused');
  assert.match(app.reason!, /writable/);
  assert.equal(model.snapshot({ uid: 2004 }).tenants.length, 0);
});

test('the control answer: the uid filters, garbage gets an error', () => {
  const { book, registry, model } = setup();
  registry.pools.set('a', new FakePool(book, '/srv/a/app', 2001));
  registry.pools.set('b', new FakePool(book, '/srv/b/app', 2002));
  const root = answer('{"op":"status"}', 0, model);
  assert.ok(root.ok && 'status' in root && root.status.tenants.length === 2);
  const a = answer('{"op":"status"}', 2001, model);
  assert.ok(a.ok && 'status' in a && a.status.tenants.length === 1 && a.status.tenants[0].uid === 2001);
  for (const bad of ['', 'not json', '{"op":"status","uid":0}', '{"op":"rm -rf"}', '[]', '{"op":"stop","pid":-1}']) {
    const r = answer(bad, 2001, model);
    assert.equal(r.ok, false, bad);
  }
});
