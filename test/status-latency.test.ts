import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Latency, PROMETHEUS_BUCKETS, SLOT_MS, WINDOW_SECONDS } from '../sidecar/src/status/latency';

const T0 = 1_700_000_000_000;

test('mean and p95 of the last minute: 1 ms to 100 ms evenly, p95 within its bucket of 95 ms', () => {
  const l = new Latency();
  for (let i = 1; i <= 100; i++) l.add(i / 1000, T0 + i * 10);
  const s = l.summary(T0 + 2000);
  assert.equal(s.count, 100);
  assert.equal(s.window, WINDOW_SECONDS);
  assert.ok(Math.abs(s.mean - 0.0505) < 1e-9, `mean ${s.mean}`);
  // Buckets are √2 wide: 95 ms lies in (90.5, 128] ms; interpolation lands inside it.
  assert.ok(s.p95 > 0.0905 && s.p95 <= 0.128, `p95 ${s.p95}`);
});

test('a slow tail shows in p95, not in a mean of fast requests alone', () => {
  const l = new Latency();
  for (let i = 0; i < 90; i++) l.add(0.002, T0);
  for (let i = 0; i < 10; i++) l.add(3, T0);
  const s = l.summary(T0);
  assert.ok(s.p95 > 2 && s.p95 <= 3 * Math.SQRT2, `p95 ${s.p95}`);
});

test('requests older than the window are forgotten, and the window gives its memory back', () => {
  const l = new Latency();
  l.add(5, T0);
  assert.equal(l.summary(T0 + 30_000).count, 1, 'still in the last minute');
  for (let i = 0; i < 10; i++) l.add(0.01, T0 + WINDOW_SECONDS * 1000);
  const s = l.summary(T0 + WINDOW_SECONDS * 1000);
  assert.equal(s.count, 10, 'the 5 s request fell out of the window');
  assert.ok(s.p95 < 0.02);
  const empty = l.summary(T0 + 3 * WINDOW_SECONDS * 1000);
  assert.deepEqual(empty, { mean: 0, p95: 0, window: WINDOW_SECONDS, count: 0 });
  assert.equal((l as unknown as { counts?: Uint32Array }).counts, undefined, 'no window arrays held for an idle app');
});

test('a slot is reused, not grown: a minute of heavy traffic keeps the same arrays', () => {
  const l = new Latency();
  l.add(0.001, T0);
  const arrays = l as unknown as { counts: Uint32Array; slots: Float64Array };
  const { counts, slots } = arrays;
  for (let t = 0; t < 10 * WINDOW_SECONDS * 1000; t += SLOT_MS / 4) l.add(0.001, T0 + t);
  assert.equal(arrays.counts, counts);
  assert.equal(arrays.slots, slots);
  assert.equal(counts.byteLength, 6 * 42 * 4, 'the bytes the comment in latency.ts states');
});

test('the Prometheus histogram is cumulative since the start, whatever the window', () => {
  const l = new Latency();
  assert.equal(l.histogram(), undefined);
  l.add(0.003, T0);
  l.add(0.2, T0);
  l.add(100, T0 + 10 * WINDOW_SECONDS * 1000);
  const h = l.histogram()!;
  assert.equal(h.count, 3);
  assert.ok(Math.abs(h.sum - 100.203) < 1e-9);
  const at = (le: number) => h.counts[PROMETHEUS_BUCKETS.indexOf(le)];
  assert.equal(at(0.005), 1);
  assert.equal(at(0.1), 1);
  assert.equal(at(0.25), 2);
  assert.equal(at(60), 2, 'the 100 s request only in +Inf (count)');
  for (let i = 1; i < h.counts.length; i++) assert.ok(h.counts[i] >= h.counts[i - 1]);
});
