import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { AppBook } from '../sidecar/src/status/app-book';
import { EventRing } from '../sidecar/src/status/events';
import { RegistryLike, StatusModel } from '../sidecar/src/status/model';
import { prometheusText } from '../sidecar/src/status/prometheus';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { UserNames } from '../sidecar/src/status/user-names';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function used(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function fill(book: AppBook, n: number, requested: boolean): void {
  for (let i = 0; i < n; i++) {
    const limits = { timeout: 30, cpu: 20, memory: 256 << 20, processes: 4, idle: 300, tasks: 256, concurrency: 1 };
    const rec = book.open({ root: `/home/tenant${String(i).padStart(4, '0')}/public_html`, entry: 'app.py', kind: 'wsgi', limits }, 10_000 + i);
    if (requested) {
      rec.ended(200, performance.now(), false);
      rec.latency.summary(Date.now() + 3600_000); // an hour later: the minute's window is given back
    }
  }
}

test('an idle app costs about a kilobyte of lodged\'s memory; 1,000 idle tenants make a JSON under 1 MB', (t) => {
  const n = 10_000;
  const before = used();
  const never = new AppBook(n, new EventRing(10));
  fill(never, n, false);
  const mid = used();
  const once = new AppBook(n, new EventRing(10));
  fill(once, n, true);
  const after = used();
  const perNever = (mid - before) / n;
  const perOnce = (after - mid) / n;
  t.diagnostic(`bytes per idle app record: ${perNever.toFixed(0)} (never requested), ${perOnce.toFixed(0)} (requested once, then idle)`);
  assert.ok(perNever < 1024, `an app never requested: ${perNever} bytes`);
  assert.ok(perOnce < 2048, `an app requested then idle: ${perOnce} bytes`);

  const book = new AppBook(n, new EventRing(10));
  fill(book, 1000, true);
  const registry: RegistryLike = { pools: new Map() };
  const model = new StatusModel(registry, { enforcement: () => 'FakeEnforcement', version: '0.0.0-test', book, users: new UserNames('/nonexistent') });
  const snap = model.snapshot();
  statusSnapshot.parse(snap);
  const json = JSON.stringify(snap);
  const metrics = prometheusText(snap);
  t.diagnostic(`1,000 idle tenants: JSON ${json.length} bytes (${Math.round(json.length / 1000)} per app), Prometheus text ${metrics.length} bytes`);
  assert.equal(snap.tenants.length, 1000);
  assert.ok(json.length < 1_000_000, `JSON of 1,000 idle tenants: ${json.length} bytes`);
});
