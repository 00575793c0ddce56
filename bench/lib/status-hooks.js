'use strict';
// The status model's own cost, in this process, with lodged's real classes
// (dist/sidecar/src/status/): bytes per app record, nanoseconds per request of the
// hooks a request runs, and the time and size of a snapshot of N apps.
//
//   node --expose-gc bench/lib/status-hooks.js N     one JSON object on stdout
//
// The hooks of a request served by a worker lodged holds (server/apache-conn.ts):
// performance.now() when it starts, responseStatus() of the first chunk the worker
// sends, AppRecord.ended() when the last one has gone. A lent request (mod_lodge
// carries the bytes) runs releasedStatus() instead of responseStatus().

const path = require('node:path');
const dist = path.join(__dirname, '..', '..', 'dist', 'sidecar', 'src');
const { AppBook } = require(path.join(dist, 'status', 'app-book'));
const { EventRing } = require(path.join(dist, 'status', 'events'));
const { StatusModel } = require(path.join(dist, 'status', 'model'));
const { statusSnapshot } = require(path.join(dist, 'status', 'schema'));
const { prometheusText } = require(path.join(dist, 'status', 'prometheus'));
const { UserNames } = require(path.join(dist, 'status', 'user-names'));
const { responseStatus, releasedStatus } = require(path.join(dist, 'status', 'request-hooks'));
const { encodeHead, encodeFrame, FrameType, Release, END_FRAME } = require(path.join(dist, 'protocol', 'frames'));

const CALLS = 1_000_000;
const RECORDS = 10_000;   // for bytes per record: enough that one object's noise vanishes
const LIMITS = { timeout: 30, cpu: 20, memory: 256 << 20, processes: 1, idle: 1, tasks: 256 };

if (typeof global.gc !== 'function') {
  process.stderr.write('status-hooks: run with node --expose-gc\n');
  process.exit(2);
}

function used() {
  for (let i = 0; i < 3; i++) global.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

// Apps as the live step makes them: one tenant, one folder per app, each asked once.
function fill(book, n, requested) {
  for (let i = 0; i < n; i++) {
    const rec = book.open({ root: `/tmp/lodge-bench.XXXXXX/statuscost/root/cost/a${String(i).padStart(5, '0')}`, entry: 'app.py', kind: 'wsgi', limits: LIMITS }, 1001);
    if (requested) {
      rec.ended(200, performance.now(), false);
      // An hour later: the minute's latency window is given back, as for any idle app.
      rec.latency.summary(Date.now() + 3600_000);
    }
  }
}

function bytesPerRecord(requested) {
  const before = used();
  const book = new AppBook(RECORDS, new EventRing(10));
  fill(book, RECORDS, requested);
  const after = used();
  if (book.size !== RECORDS) throw new Error(`the book holds ${book.size} records, not ${RECORDS}`);
  return (after - before) / RECORDS;
}

// ns per call of fn(i), the best of three runs of CALLS (the others are warm-up or noise).
function nsPer(fn) {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / CALLS);
  }
  return best;
}

function hookCost(n) {
  // The first chunk of a hello answer as a worker writes it: HEAD, BODY, END.
  const first = Buffer.concat([
    encodeHead(200, [['Content-Type', 'text/plain'], ['Content-Length', '14']]),
    encodeFrame(FrameType.BODY, Buffer.from('Hello, world!\n')),
    END_FRAME,
  ]);
  const book = new AppBook(Math.max(n, 1), new EventRing(10));
  fill(book, Math.max(n, 1), false);
  const records = [...book.values()];
  const one = records[0];
  let sink = 0;
  const out = {
    // The whole per-request path on one busy app, then spread over all N apps.
    request: nsPer(() => {
      const began = performance.now();
      one.ended(responseStatus(first), began, false);
    }),
    requestAcrossApps: nsPer((i) => {
      const began = performance.now();
      records[i % records.length].ended(responseStatus(first), began, false);
    }),
    lentRequest: nsPer(() => {
      const began = performance.now();
      one.ended(releasedStatus(Release.DONE, 200), began, false);
    }),
    responseStatus: nsPer(() => { sink += responseStatus(first); }),
    clock: nsPer(() => { sink += performance.now(); }),
    queued: nsPer((i) => one.queued(i & 7)),
    emptyLoop: nsPer(() => { sink++; }),
  };
  if (one.total < CALLS || sink === 0) throw new Error('the hooks did not run');
  return out;
}

// A snapshot of N apps, each asked once and idle since: the JSON the host page and
// `lodge status --json` read, and the Prometheus text. No pool is live: the registry
// is an empty stand-in (FakeRegistry), as after every app was reaped.
function snapshotCost(n) {
  const book = new AppBook(Math.max(n, 1), new EventRing(10));
  fill(book, n, true);
  const fakeRegistry = { pools: new Map() };
  const model = new StatusModel(fakeRegistry, { enforcement: () => 'bench', book, users: new UserNames() });
  let json = '';
  let snap;
  const t0 = process.hrtime.bigint();
  const ROUNDS = 20;
  for (let i = 0; i < ROUNDS; i++) {
    snap = model.snapshot();
    json = JSON.stringify(snap);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / ROUNDS;
  statusSnapshot.parse(snap);
  const apps = snap.tenants.reduce((k, t) => k + t.apps.length, 0);
  if (apps !== n) throw new Error(`the snapshot lists ${apps} apps, not ${n}`);
  return { apps, jsonBytes: Buffer.byteLength(json), metricsBytes: Buffer.byteLength(prometheusText(snap)), snapshotMs: ms };
}

function main() {
  const n = Number(process.argv[2] ?? 1000);
  if (!Number.isInteger(n) || n < 1) throw new Error(`status-hooks: N must be a whole number >= 1, got ${process.argv[2]}`);
  const result = {
    calls: CALLS,
    recordBytes: { never: bytesPerRecord(false), once: bytesPerRecord(true), records: RECORDS },
    hooksNs: hookCost(n),
    snapshot: snapshotCost(n),
    node: process.version,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main();
