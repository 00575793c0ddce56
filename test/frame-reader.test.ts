import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FrameError, FrameReader } from '../sidecar/src/protocol/frame-reader';
import { FrameType, decodePairs, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';

function collect() {
  const frames: Array<[number, Buffer]> = [];
  const reader = new FrameReader((t, f) => frames.push([t, Buffer.from(f)]));
  return { frames, reader };
}

test('frames are found whatever the chunking, down to one byte at a time', () => {
  const pairs = encodePairs([['PATH_INFO', '/x'], ['HTTP_HOST', 'a.localhost']]);
  const stream = Buffer.concat([
    encodeFrame(FrameType.REQ, pairs),
    encodeFrame(FrameType.BODY, Buffer.from('hello')),
    encodeFrame(FrameType.BODY_END),
  ]);
  for (const size of [1, 3, 7, 8, 9, 16, stream.length]) {
    const { frames, reader } = collect();
    for (let i = 0; i < stream.length; i += size) reader.push(stream.subarray(i, i + size));
    assert.deepEqual(frames.map(([t]) => t), [FrameType.REQ, FrameType.BODY, FrameType.BODY_END], `chunks of ${size}`);
    assert.deepEqual(decodePairs(frames[0][1], 8), [['PATH_INFO', '/x'], ['HTTP_HOST', 'a.localhost']]);
    assert.equal(frames[1][1].subarray(8).toString(), 'hello');
    assert.ok(reader.idle);
  }
});

test('a frame over the size limit is refused before its payload is read', () => {
  const { reader } = collect();
  const header = Buffer.alloc(8);
  header[0] = FrameType.BODY;
  header.writeUInt32BE(0xffffffff, 4);
  assert.throws(() => reader.push(header), FrameError);
});

test('pairs that run past their payload are an error, not a crash', () => {
  const bad = Buffer.from([0, 5, 65, 66]);
  assert.throws(() => decodePairs(bad), /runs past/);
});
