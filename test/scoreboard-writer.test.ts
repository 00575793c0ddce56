import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createBoard } from '../sidecar/src/scoreboard/board-file';
import { SLOT, SLOT_SIZE } from '../sidecar/src/scoreboard/layout';
import { BoardReader } from '../sidecar/src/scoreboard/reader';
import { BoardWriteError, BoardWriter } from '../sidecar/src/scoreboard/writer';
import { workerNative } from '../sidecar/src/runtime-node/worker-native';
import { PROMETHEUS_BUCKETS } from '../sidecar/src/status/latency';

// The Node worker's writer (scoreboard/writer.ts) through the real shared map the worker
// uses (lodge_worker.node's mapShared), read back by lodged's reader from the file.

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-board-writer-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

function mapped(slots: number) {
  const file = createBoard(path.join(dir, `b${n++}`), slots);
  const map = workerNative().mapShared(file.fd, file.geometry.size);
  return { file, map, read: () => new BoardReader(file.fd, file.geometry).read() };
}

test('a Node worker\'s block of slots: claim, begin and end as lodged reads them, one slot per lane', async () => {
  const { map, read } = mapped(8);
  const w = new BoardWriter(map, 4, 3);
  const lanes = [0, 1, 2].map((i) => w.slot(i));
  for (const s of lanes) s.claim(4242, 7);
  let snap = read();
  assert.deepEqual(snap.slots.slice(4, 7).map((s) => [s.pid, s.generation, s.state, s.consistent, s.valid]), [0, 1, 2].map(() => [4242, 7, 'starting', true, true]));
  assert.equal(snap.slots[3].state, 'empty', 'slots outside the block untouched');
  assert.equal(snap.slots[7].state, 'empty');
  for (const s of lanes) s.setState(2);
  lanes[1].begin('POST', '/up?x=1');
  snap = read();
  assert.deepEqual([snap.slots[5].state, snap.slots[5].method, snap.slots[5].path, snap.slots[5].requestId], ['busy', 'POST', '/up?x=1', 1]);
  assert.equal(snap.slots[4].state, 'idle');
  await new Promise((r) => setTimeout(r, 12));
  lanes[1].end(201);
  lanes[1].begin('GET', '/' + 'p'.repeat(300));
  lanes[1].end(0);
  lanes[2].begin('GET', '/');
  lanes[2].end(503);
  snap = read();
  const s5 = snap.slots[5];
  assert.equal(s5.state, 'idle');
  assert.equal(s5.requestId, 2);
  assert.equal(s5.requests, 2);
  assert.deepEqual(s5.statusClass, [0, 1, 0, 0, 0, 1], 'a 201 and one with no status');
  assert.equal(s5.path.length, 120, 'the path is cut at PATH_MAX');
  assert.equal(s5.pathCut, true);
  assert.ok(s5.latencySumNs >= 10e6, `the 12 ms request is in the sum: ${s5.latencySumNs}`);
  // 12 ms lies in the 0.025 s Prometheus bucket; the other took well under 5 ms.
  assert.equal(s5.prom[PROMETHEUS_BUCKETS.indexOf(0.025)], 1);
  assert.equal(s5.prom.reduce((a, b) => a + b, 0), 2);
  assert.equal(s5.fine.reduce((a, b) => a + b, 0), 2);
  assert.deepEqual(snap.slots[6].statusClass, [0, 0, 0, 0, 1, 0]);
});

test('the leave word lodged writes is read from the block\'s first slot', () => {
  const { file, map } = mapped(4);
  const w = new BoardWriter(map, 2, 2);
  assert.equal(w.toldToLeave(), false);
  const word = Buffer.alloc(4);
  word.writeUInt32LE(1);
  fs.writeSync(file.fd, word, 0, 4, file.geometry.slotsOffset + 2 * SLOT_SIZE + SLOT.leave);
  assert.equal(w.toldToLeave(), true);
});

test('a block off the board, or a board whose header is not this layout, is refused', () => {
  const { file, map } = mapped(4);
  assert.throws(() => new BoardWriter(map, 3, 2), BoardWriteError);
  assert.throws(() => new BoardWriter(map, -1, 1), BoardWriteError);
  assert.throws(() => new BoardWriter(map, 0, 0), BoardWriteError);
  fs.writeSync(file.fd, Buffer.from('NOTBOARD'), 0, 8, 0);
  assert.throws(() => new BoardWriter(map, 0, 1), /not a version 1 Lodge scoreboard/);
  assert.throws(() => new BoardWriter(new ArrayBuffer(10), 0, 1), /shorter than its header/);
});
