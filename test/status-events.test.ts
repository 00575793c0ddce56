import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EVENT_MESSAGE_MAX, EventRing } from '../sidecar/src/status/events';

const T0 = 1_700_000_000_000;

test('the event ring keeps the newest, oldest first, and never more than its bound', () => {
  const ring = new EventRing(100);
  for (let i = 0; i < 5000; i++) ring.push({ at: T0 + i, uid: 1000 + (i % 7), app: `/srv/t${i % 7}`, kind: 'kill', message: `kill ${i}` });
  assert.equal(ring.size, 100);
  const list = ring.list();
  assert.equal(list.length, 100);
  assert.equal(list[0].message, 'kill 4900');
  assert.equal(list[99].message, 'kill 4999');
  for (let i = 1; i < list.length; i++) assert.ok(list[i].at > list[i - 1].at);
});

test('a long message is clipped; a repeat within the minute is counted, not pushed', () => {
  const ring = new EventRing(10);
  ring.push({ at: T0, uid: 1, app: '/a', kind: 'crash', message: 'x'.repeat(100_000) });
  assert.equal(ring.list()[0].message.length, EVENT_MESSAGE_MAX);
  for (let i = 0; i < 50; i++) ring.push({ at: T0 + i, uid: 2, app: '/b', kind: 'refusal', message: '/b is writable by others' });
  ring.push({ at: T0 + 1, uid: 3, app: '/c', kind: 'reload', message: 'new code' });
  assert.equal(ring.size, 3, 'fifty refusals of one app take one place');
  assert.match(ring.list()[1].message, /\(50 times\)$/);
  ring.push({ at: T0 + 120_000, uid: 2, app: '/b', kind: 'refusal', message: '/b is writable by others' });
  assert.equal(ring.size, 4, 'the same refusal a minute later is a new event');
});

test('a filter keeps one tenant\'s events; subscribers see each new event', () => {
  const ring = new EventRing(10);
  const seen: string[] = [];
  const off = ring.subscribe((e) => seen.push(e.message));
  ring.push({ at: T0, uid: 1, app: '/a', kind: 'kill', message: 'a' });
  ring.push({ at: T0, uid: 2, app: '/b', kind: 'kill', message: 'b' });
  off();
  ring.push({ at: T0, uid: 1, app: '/a', kind: 'reload', message: 'c' });
  assert.deepEqual(seen, ['a', 'b']);
  assert.deepEqual(ring.list((e) => e.uid === 1).map((e) => e.message), ['a', 'c']);
});
