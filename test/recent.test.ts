import { test, mock } from 'node:test';
import * as assert from 'node:assert/strict';
import { Recent } from '../sidecar/src/pool/recent-exits';

test('Recent: at most max entries, the oldest going first', () => {
  const r = new Recent<number, string>(3, 30_000);
  for (let i = 1; i <= 5; i++) r.set(i, `e${i}`);
  assert.equal(r.size, 3);
  assert.equal(r.get(1), undefined);
  assert.equal(r.get(2), undefined);
  assert.deepEqual([3, 4, 5].map((k) => r.get(k)), ['e3', 'e4', 'e5']);
  r.set(3, 'again'); // set anew: now the newest, so 4 goes next
  r.set(6, 'e6');
  assert.equal(r.get(4), undefined);
  assert.equal(r.get(3), 'again');
});

test('Recent: an entry older than ttlMs is not found, and goes when the next comes (fake clock)', () => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  try {
    const r = new Recent<string, number>(256, 30_000);
    r.set('a', 1);
    mock.timers.tick(20_000);
    r.set('b', 2);
    assert.equal(r.get('a'), 1);
    mock.timers.tick(10_000);
    assert.equal(r.get('a'), undefined, '30 s old');
    assert.equal(r.get('b'), 2);
    r.set('c', 3);
    assert.equal(r.size, 2, 'the expired one went');
  } finally {
    mock.timers.reset();
  }
});
