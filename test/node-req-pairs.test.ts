import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PairsError, decodePairs, encodePairs } from '../sidecar/src/protocol/frames';
import { reqPairs } from '../sidecar/src/runtime-node/req-pairs';

// The Node worker's decoder of a REQ's pairs (req-pairs.ts) against the protocol's own:
// the same pairs, and the same refusal of a payload cut short.

const PAIRS: Array<[string, string]> = [
  ['REQUEST_METHOD', 'GET'],
  ['HTTP_USER_AGENT', 'Mozilla/5.0 (X11; Linux x86_64) \xe9\xff'],
  ['EMPTY', ''],
  ['', 'no name'],
  ['REQUEST_URI', '/a%20b?x=1'],
];

test('the same pairs as decodePairs, after a frame header', () => {
  const payload = encodePairs(PAIRS);
  const frame = Buffer.concat([Buffer.alloc(8, 0xee), payload]);
  assert.deepEqual(reqPairs(frame, 8), PAIRS);
  assert.deepEqual(reqPairs(frame, 8), decodePairs(frame, 8));
  assert.deepEqual(reqPairs(Buffer.alloc(8), 8), []);
});

test('a payload cut anywhere is refused as decodePairs refuses it', () => {
  const frame = Buffer.concat([Buffer.alloc(8), encodePairs(PAIRS)]);
  for (let cut = 9; cut < frame.length; cut++) {
    const part = frame.subarray(0, cut);
    let theirs: unknown;
    try {
      decodePairs(part, 8);
    } catch (err) {
      theirs = err;
    }
    if (theirs === undefined) {
      assert.deepEqual(reqPairs(part, 8), decodePairs(part, 8), `cut at ${cut}`);
      continue;
    }
    assert.throws(() => reqPairs(part, 8), PairsError, `cut at ${cut}`);
  }
});
