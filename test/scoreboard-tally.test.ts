import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FINE_BUCKETS, PROM_BUCKETS } from '../sidecar/src/scoreboard/layout';
import type { BoardSnapshot, SlotView } from '../sidecar/src/scoreboard/reader';
import { BoardTally } from '../sidecar/src/scoreboard/tally';

// Fake reads of a board (what BoardReader returns), built by hand: no file, no worker.
function fakeSlot(index: number, pid: number, ended2xx: number, ended5xx = 0, extra: Partial<SlotView> = {}): SlotView {
  const prom = new Array<number>(PROM_BUCKETS).fill(0);
  const fine = new Array<number>(FINE_BUCKETS).fill(0);
  prom[0] = ended2xx + ended5xx;
  fine[3] = ended2xx + ended5xx;
  return {
    index,
    consistent: true,
    valid: true,
    pid,
    generation: 1,
    state: 'idle',
    requestId: ended2xx + ended5xx,
    ticket: 0,
    sinceNs: 1,
    method: 'GET',
    path: '/',
    pathCut: false,
    requests: ended2xx + ended5xx,
    statusClass: [0, ended2xx, 0, 0, ended5xx, 0],
    latencySumNs: 1000 * (ended2xx + ended5xx),
    prom,
    fine,
    ...extra,
  };
}
const snap = (...slots: SlotView[]): BoardSnapshot => ({ headerOk: true, nowNs: 2, retried: 0, slots });

test('between two reads, each worker counts what it ended since the last one', () => {
  const t = new BoardTally();
  const pids = (i: number) => [100, 200][i];
  assert.deepEqual(t.step(snap(fakeSlot(0, 100, 3), fakeSlot(1, 200, 0)), pids).map((d) => [d.index, d.ended]), [[0, 3]]);
  const [d0, d1] = t.step(snap(fakeSlot(0, 100, 5, 1), fakeSlot(1, 200, 2)), pids);
  assert.deepEqual([d0.ended, d0.statusClass, d0.latencySumNs, d0.prom[0], d0.fine[3]], [3, [0, 2, 0, 0, 1, 0], 3000, 3, 3]);
  assert.deepEqual([d1.index, d1.ended], [1, 2]);
  assert.deepEqual(t.step(snap(fakeSlot(0, 100, 5, 1), fakeSlot(1, 200, 2)), pids), [], 'nothing new, nothing counted');
});

test('a slot whose pid is not the one lodged started there is not counted, whatever it claims', () => {
  const t = new BoardTally();
  assert.deepEqual(t.step(snap(fakeSlot(0, 1, 1_000_000)), () => 100), [], 'pid 1 (a lie) in the slot of worker 100');
  assert.deepEqual(t.step(snap(fakeSlot(0, 100, 4)), () => undefined), [], 'a slot lodged gave to nobody');
});

test('a new worker in a slot starts from zero; the old one\'s counts are not taken from it', () => {
  const t = new BoardTally();
  t.step(snap(fakeSlot(0, 100, 50)), () => 100);
  // Worker 100 left; lodged started 300 in the slot, which has not claimed it yet.
  assert.deepEqual(t.step(snap(fakeSlot(0, 100, 52)), () => 300), []);
  const [d] = t.step(snap(fakeSlot(0, 300, 2)), () => 300);
  assert.equal(d.ended, 2);
});

test('counts that go backwards (reset or forged) are taken as they are now, never as a negative', () => {
  const t = new BoardTally();
  t.step(snap(fakeSlot(0, 100, 50)), () => 100);
  const [d] = t.step(snap(fakeSlot(0, 100, 7)), () => 100);
  assert.equal(d.ended, 7);
  assert.ok([...d.statusClass, ...d.prom, ...d.fine, d.latencySumNs].every((v) => v >= 0));
  // Only the latency sum went back: the whole slot is taken afresh.
  t.step(snap(fakeSlot(0, 100, 9)), () => 100);
  const [e] = t.step(snap(fakeSlot(0, 100, 9, 0, { latencySumNs: 1 })), () => 100);
  assert.ok(e.latencySumNs >= 0 && e.ended === 9);
});

test('a torn or invalid read counts nothing; the next whole read carries what it missed', () => {
  const t = new BoardTally();
  t.step(snap(fakeSlot(0, 100, 1)), () => 100);
  assert.deepEqual(t.step(snap(fakeSlot(0, 100, 4, 0, { consistent: false })), () => 100), []);
  assert.deepEqual(t.step(snap(fakeSlot(0, 100, 4, 0, { valid: false, state: 'invalid' })), () => 100), []);
  const [d] = t.step(snap(fakeSlot(0, 100, 6)), () => 100);
  assert.equal(d.ended, 5);
});
