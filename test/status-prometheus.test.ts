import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PROMETHEUS_BUCKETS } from '../sidecar/src/status/latency';
import { escapeLabel, prometheusText } from '../sidecar/src/status/prometheus';
import { AppStatus, KillReason, StatusSnapshot, killReason, statusSnapshot } from '../sidecar/src/status/schema';
import { promtoolCheck } from './helpers/promtool';

function fakeApp(root: string, over: Partial<AppStatus> = {}): AppStatus {
  const kills = Object.fromEntries(killReason.options.map((r) => [r, 0])) as Record<KillReason, number>;
  return {
    root, entry: 'app.py', kind: 'wsgi', state: 'running', generation: 0,
    limits: { timeout: 30, cpu: 20, memory: 256 * 1024 * 1024, processes: 4, idle: 300 },
    workers: [], queue: { now: 0, peak: 0 }, capReached: 0,
    requests: { total: 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    latency: { mean: 0, p95: 0, window: 60 }, kills, restarts: 0, unstableRestarts: 0, memory: 0,
    ...over,
  };
}

/** A snapshot made by hand, as a FakeSnapshot: two tenants, one without a user name, one hostile path. */
function fakeSnapshot(): StatusSnapshot {
  const busy = fakeApp('/srv/alice/shop', {
    workers: [
      { pid: 4242, state: 'busy', generation: 1, startedAt: 1, requests: 9, current: { method: 'GET', path: '/x', elapsed: 0.5 }, rss: 30_000_000 },
      { pid: 4243, state: 'idle', generation: 1, startedAt: 1, requests: 3, rss: 20_000_000 },
    ],
    queue: { now: 2, peak: 5 },
    requests: { total: 12, '2xx': 9, '3xx': 0, '4xx': 1, '5xx': 1, unseen: 1 },
    histogram: { counts: PROMETHEUS_BUCKETS.map((_, i) => Math.min(12, i * 2)), sum: 3.5, count: 12 },
    memory: 50_000_000,
    restarts: 1,
  });
  busy.kills.timeout = 1;
  return statusSnapshot.parse({
    version: 1,
    lodged: { pid: 10, version: '0.1.0', uptime: 12.5, enforcement: 'cgroup v2' },
    at: 1_700_000_000_000,
    buckets: PROMETHEUS_BUCKETS,
    tenants: [
      { uid: 1001, name: 'alice', apps: [busy] },
      { uid: 1002, apps: [fakeApp('/srv/b "quoted" \\ back\nslash', { state: 'idle-stopped' })] },
    ],
    events: [],
  });
}

test('the Prometheus text of a FakeSnapshot passes promtool', () => {
  const text = prometheusText(fakeSnapshot());
  assert.equal(promtoolCheck(text), '');
});

test('each family has HELP and TYPE; counters end in _total; units are base units', () => {
  const text = prometheusText(fakeSnapshot());
  for (const [name, type] of [
    ['lodge_up', 'gauge'], ['lodge_build_info', 'gauge'], ['lodge_requests_total', 'counter'],
    ['lodge_request_duration_seconds', 'histogram'], ['lodge_workers', 'gauge'], ['lodge_memory_bytes', 'gauge'],
    ['lodge_queue_length', 'gauge'], ['lodge_watchdog_kills_total', 'counter'], ['lodge_restarts_total', 'counter'],
  ]) {
    assert.match(text, new RegExp(`^# HELP ${name} .+$`, 'm'), name);
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
  }
  assert.match(text, /^lodge_build_info\{version="0\.1\.0"\} 1$/m);
  assert.match(text, /^lodge_requests_total\{tenant="alice",app="\/srv\/alice\/shop",code="2xx"\} 9$/m);
  assert.match(text, /^lodge_requests_total\{tenant="alice",app="\/srv\/alice\/shop",code="unknown"\} 1$/m);
  assert.match(text, /^lodge_workers\{tenant="alice",app="\/srv\/alice\/shop",state="busy"\} 1$/m);
  assert.match(text, /^lodge_memory_bytes\{tenant="alice",app="\/srv\/alice\/shop"\} 50000000$/m);
  assert.match(text, /^lodge_queue_length\{tenant="alice",app="\/srv\/alice\/shop"\} 2$/m);
  assert.match(text, /^lodge_watchdog_kills_total\{tenant="alice",app="\/srv\/alice\/shop",reason="timeout"\} 1$/m);
  assert.match(text, /^lodge_request_duration_seconds_bucket\{tenant="alice",app="\/srv\/alice\/shop",le="\+Inf"\} 12$/m);
  assert.match(text, /^lodge_request_duration_seconds_sum\{tenant="alice",app="\/srv\/alice\/shop"\} 3\.5$/m);
  assert.doesNotMatch(text, /pid=|4242/, 'no per-pid label');
});

test('a tenant without a user name is labelled by uid; label values are escaped', () => {
  const text = prometheusText(fakeSnapshot());
  assert.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.ok(text.includes('lodge_queue_length{tenant="1002",app="/srv/b \\"quoted\\" \\\\ back\\nslash"} 0'), text);
  assert.ok(!text.split('\n').some((l) => l.startsWith('slash')), 'the newline in a path did not break a line');
});

test('10,000 apps make one text (each family written by a loop, not one call with every line as an argument)', () => {
  const snap = fakeSnapshot();
  const histogram = { counts: PROMETHEUS_BUCKETS.map(() => 1), sum: 0.001, count: 1 };
  const apps = Array.from({ length: 10_000 }, (_, i) => fakeApp(`/srv/t${i}`, { histogram }));
  snap.tenants = [{ uid: 1003, name: 'many', apps }];
  const text = prometheusText(snap);
  assert.equal(text.split('\n').filter((l) => l.startsWith('lodge_queue_length{')).length, 10_000);
});
