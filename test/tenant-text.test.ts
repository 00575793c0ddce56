import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { LineBucket, TENANT_TEXT_MAX, escapeControls, tenantText } from '../sidecar/src/log';

test('tenant text is clipped to its bytes and said so, and keeps to one line', () => {
  const forged = `boom\n2026-01-01T00:00:00.000Z [error] lodged[1]: forged\r\x1b[31mred\x00`;
  const t = tenantText(forged);
  assert.ok(!/[\x00-\x1f\x7f]/.test(t), 'no control character left');
  assert.equal(t, 'boom\\n2026-01-01T00:00:00.000Z [error] lodged[1]: forged\\r\\x1b[31mred\\x00');
  const big = tenantText('x'.repeat(1 << 20));
  assert.ok(Buffer.byteLength(big) < TENANT_TEXT_MAX + 40, `${Buffer.byteLength(big)} bytes`);
  assert.match(big, /\.\.\. \(1048076 more bytes\)$/);
  // A cut inside a character drops the partial character.
  const euro = tenantText('€'.repeat(400));
  assert.ok(!euro.includes('\uFFFD'));
  assert.match(euro, /^(€)+\.\.\. \(\d+ more bytes\)$/);
  assert.equal(escapeControls('a\u2028b\u0085c'), 'a\\x2028b\\x85c');
});

test('a line bucket lets a burst through, then one line per refill, and counts the rest once', () => {
  const b = new LineBucket(3, 1000, 0);
  assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false, false]);
  assert.equal(b.waitMs(0), 1000);
  assert.equal(b.take(999), false);
  assert.equal(b.take(1000), true);
  assert.equal(b.dropped(), 3);
  assert.equal(b.dropped(), 0, 'said once');
  assert.equal(b.full(10_000), true);
});
