import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { BACKOFF_FIRST_MS, BACKOFF_MAX_MS, StartBackoff } from '../sidecar/src/pool/start-backoff';

test('after a failure, tries are held back for a doubling time, up to the maximum', () => {
  const b = new StartBackoff();
  let now = 0;
  assert.equal(b.release(now, 1), true, 'nothing failed yet');
  const waits: number[] = [];
  for (let i = 0; i < 10; i++) {
    waits.push(b.fail(now, 1, 'boom'));
    assert.equal(b.release(now + waits[i] - 1, 1), false, 'held back until its time');
    assert.equal(b.failed, 'boom');
    now += waits[i];
    assert.equal(b.release(now, 1), true, 'tried again once its time came');
  }
  assert.deepEqual(waits.slice(0, 4), [BACKOFF_FIRST_MS, 2 * BACKOFF_FIRST_MS, 4 * BACKOFF_FIRST_MS, 8 * BACKOFF_FIRST_MS]);
  assert.equal(waits.at(-1), BACKOFF_MAX_MS);
  b.succeeded();
  assert.equal(b.fail(now, 1, 'again'), BACKOFF_FIRST_MS, 'a worker that got ready starts the doubling afresh');
});

test('an edit brings the next try forward once; touching the file every second does not start the app every second', () => {
  const b = new StartBackoff();
  let now = 0;
  let stamp = 100;
  let tries = 1;
  b.fail(now, stamp, 'boom');
  // A tenant that touches its entry file every second for ten minutes, requests coming all the time.
  for (let t = 1; t <= 600; t++) {
    now = t * 1000;
    stamp++;
    if (b.release(now, stamp)) {
      tries++;
      b.fail(now, stamp, 'boom');
    }
  }
  // Two tries per doubling (one the edit brought forward, one at its time), the wait then at its maximum.
  assert.ok(tries <= 2 * 8 + 600 / (BACKOFF_MAX_MS / 1000), `${tries} start attempts in ten minutes`);
});

test('a real fix after a failure is tried at once, not after the wait', () => {
  const b = new StartBackoff();
  b.fail(0, 1, 'boom');
  b.fail(0, 1, 'boom');
  b.fail(0, 1, 'boom'); // waiting 4 s now
  assert.equal(b.release(10, 1), false, 'same file: held back');
  assert.equal(b.release(10, 2), true, 'edited: tried at once');
  b.fail(20, 2, 'still broken');
  assert.equal(b.release(30, 3), false, 'the edit\'s try failed: the next edit waits for the time');
  assert.equal(b.release(20 + 8000, 3), true);
});
