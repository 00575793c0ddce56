import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { checkConfig } from '../sidecar/src/config/load';
import type { Pool } from '../sidecar/src/pool/pool';
import { Registry } from '../sidecar/src/pool/registry';
import { eventually } from './helpers/site';

/** A pool with no worker left and its idle time long past, as the reaper sees one: a FakePool. */
function fakeIdlePool(root: string): { pool: Pool; forgotten: () => boolean } {
  let gone = false;
  const spec = { root, kind: 'wsgi', entry: 'app.py', callable: '', env: {}, limits: { idle: 1 } };
  const pool = { workers: new Set(), isRetired: false, lastUsed: 0, spec, reapIdle() {}, inFlight: () => 0, close() {}, forget: () => (gone = true) };
  return { pool: pool as unknown as Pool, forgotten: () => gone };
}

test('a wave of idle apps forgotten makes one call to afterReaping, once the wave is over', async () => {
  let calls = 0;
  const registry = new Registry(checkConfig({}, 'test'), false, () => calls++);
  try {
    const fakes = Array.from({ length: 50 }, (_, i) => fakeIdlePool(`/srv/t${i}`));
    for (const [i, f] of fakes.entries()) registry.pools.set(`app${i}`, f.pool);
    await eventually(() => fakes.every((f) => f.forgotten()), 'every idle pool forgotten', 10_000);
    assert.equal(calls, 0, 'nothing while the pass that forgets them runs');
    // The next pass forgets nothing: the wave is over.
    await eventually(() => calls > 0, 'afterReaping once the wave is over', 10_000);
    // Passes with nothing forgotten since make no more calls.
    const seen = calls;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(calls, seen);
    assert.equal(calls, 1);
  } finally {
    registry.close();
  }
});

test('afterReaping waits while a request is in hand', async () => {
  let calls = 0;
  const registry = new Registry(checkConfig({}, 'test'), false, () => calls++);
  try {
    const gone = fakeIdlePool('/srv/gone');
    registry.pools.set('gone', gone.pool);
    // An app serving a request, its pool kept (no idle time has passed for it).
    let busy = 1;
    const serving = { ...fakeIdlePool('/srv/busy').pool, lastUsed: Date.now(), inFlight: () => busy, workers: new Set([{}]) } as unknown as Pool;
    registry.pools.set('busy', serving);
    await eventually(() => gone.forgotten(), 'the idle pool forgotten', 10_000);
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(calls, 0, 'no collection while a request is in hand');
    busy = 0;
    await eventually(() => calls === 1, 'the collection once the request is done', 10_000);
  } finally {
    registry.close();
  }
});

test('a registry that forgets nothing never calls afterReaping', async () => {
  let calls = 0;
  const registry = new Registry(checkConfig({}, 'test'), false, () => calls++);
  try {
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(calls, 0);
  } finally {
    registry.close();
  }
});
