import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RELEASE_SIZE } from '../sidecar/src/protocol/schemas';
import { APP_BORROW, APP_MAY_BORROW, APP_TUNNEL, FRAME_MAX, FrameType, HEADER_SIZE, Release } from '../sidecar/src/protocol/frames';

const HEADER = path.join(__dirname, '..', '..', 'native', 'apache', 'lodge_frame.h');

test('mod_lodge and lodged use the same frame codes and limits', () => {
  const text = fs.readFileSync(HEADER, 'utf8');
  const c: Record<string, number> = {};
  for (const m of text.matchAll(/#define\s+LODGE_FRAME_([A-Z_]+)\s+\(?(0x[0-9a-fA-F]+|\d+)/g)) c[m[1]] = Number(m[2]);
  for (const [name, code] of Object.entries(FrameType)) {
    assert.equal(c[name], code, `LODGE_FRAME_${name}`);
  }
  const max = /#define\s+LODGE_FRAME_MAX\s+\(?([^)\n]+)\)?/.exec(text);
  assert.ok(max, 'LODGE_FRAME_MAX is defined');
  assert.equal(eval(max[1].replace(/[uUlL]+\b/g, '')), FRAME_MAX);
  assert.equal(HEADER_SIZE, 8);
  const borrow = /#define\s+LODGE_APP_BORROW\s+(0x[0-9a-fA-F]+|\d+)/.exec(text);
  assert.equal(Number(borrow?.[1]), APP_BORROW, 'LODGE_APP_BORROW');
  const may = /#define\s+LODGE_APP_MAY_BORROW\s+(0x[0-9a-fA-F]+|\d+)/.exec(text);
  assert.equal(Number(may?.[1]), APP_MAY_BORROW, 'LODGE_APP_MAY_BORROW');
  const tunnel = /#define\s+LODGE_APP_TUNNEL\s+(0x[0-9a-fA-F]+|\d+)/.exec(text);
  assert.equal(Number(tunnel?.[1]), APP_TUNNEL, 'LODGE_APP_TUNNEL');
  const verdicts: Record<string, number> = {};
  for (const m of text.matchAll(/#define\s+LODGE_RELEASE_([A-Z]+)\s+(\d+)/g)) verdicts[m[1]] = Number(m[2]);
  assert.deepEqual(verdicts, { ...Release }, 'LODGE_RELEASE_* verdicts');
  const release = /#define\s+LODGE_RELEASE_PAYLOAD_SIZE\s+(\d+)/.exec(text);
  assert.equal(Number(release?.[1]), RELEASE_SIZE, 'LODGE_RELEASE_PAYLOAD_SIZE');
});

test('each mod_lodge log number names one message', () => {
  const dir = path.join(__dirname, '..', '..', 'native', 'apache');
  const seen = new Map<string, string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.c'))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const m of text.matchAll(/LODGE_LOGNO\((\d+)\)\s*"([^"]*)"/g)) {
      const [, no, message] = m;
      const before = seen.get(no);
      // The same message may be logged from two places (one per Apache version).
      assert.ok(before === undefined || before === message, `LG${no} is used for '${before}' and for '${message}' (${file})`);
      seen.set(no, message);
    }
  }
  assert.ok(seen.size > 40, `found ${seen.size} log numbers`);
});
