import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHECK_INTERVAL_MS, CodeWatch, confineReported } from '../sidecar/src/pool/code-watch';
import { WATCHED_FILES_MAX } from '../sidecar/src/protocol/constants';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-watch-'));
const root = path.join(tmp, 'app');
const outside = path.join(tmp, 'host-secret');
fs.mkdirSync(path.join(root, 'pkg'), { recursive: true });
fs.writeFileSync(path.join(root, 'app.py'), '');
fs.writeFileSync(path.join(root, 'pkg', 'mod.py'), '');
fs.writeFileSync(outside, '');
fs.symlinkSync(outside, path.join(root, 'link.py'));
fs.symlinkSync(tmp, path.join(root, 'updir'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bump = (f: string, s: number) => fs.utimesSync(f, s, s);

/** One check interval later each call: what the pass it starts finds changed. */
function looker(w: CodeWatch): () => Promise<string | undefined> {
  let now = Date.now() + CHECK_INTERVAL_MS;
  return async () => {
    now += CHECK_INTERVAL_MS;
    w.changed(now);
    await w.settled();
    return w.changed(now);
  };
}

test('reported files are resolved against the root: .. out of it, elsewhere, duplicates and the excess are dropped', () => {
  const r = confineReported(root, [
    `${root}/pkg/mod.py`, 'pkg/mod.py', `${root}/../host-secret`, '/etc/shadow', `${root}/pkg/../app.py`, `${root}x/evil.py`,
  ]);
  assert.deepEqual(r, { files: [`${root}/pkg/mod.py`, `${root}/app.py`], outside: 3, over: 0 });
  const many = confineReported(root, Array.from({ length: 400_000 }, (_, i) => `m${i}.py`));
  assert.equal(many.files.length, WATCHED_FILES_MAX);
  assert.equal(many.over, 400_000 - WATCHED_FILES_MAX);
  assert.equal(many.files[0], `${root}/m0.py`, 'the first ones are kept');
});

test('an edit of a watched module is seen; a host file behind a symbolic link never is', async () => {
  const w = new CodeWatch(root, 'app.py');
  await w.settled();
  const snap = w.snapshot();
  w.adopt(snap, confineReported(root, [`${root}/pkg/mod.py`, `${root}/link.py`, `${root}/updir/host-secret`]).files);
  await w.settled();
  const look = looker(w);
  assert.equal(await look(), undefined);
  bump(outside, 1_000_000);
  assert.equal(await look(), undefined, 'the host file changed: not the app\'s business');
  assert.equal(w.size, 3, 'entry, restart.txt and pkg/mod.py: the links leaving the root are not watched');
  bump(path.join(root, 'pkg', 'mod.py'), 2_000_000);
  assert.equal(await look(), `${root}/pkg/mod.py`);
});

test('a watched file swapped for a link out of the root reads as gone, and then says nothing of its target', async () => {
  const f = path.join(root, 'swap.py');
  fs.writeFileSync(f, '');
  const w = new CodeWatch(root, 'app.py');
  await w.settled();
  w.adopt(w.snapshot(), [f]);
  await w.settled();
  const look = looker(w);
  fs.rmSync(f);
  fs.symlinkSync(outside, f);
  assert.equal(await look(), f, 'seen as a change (gone)');
  w.adopt(w.snapshot(), []);
  await w.settled();
  bump(outside, 3_000_000);
  assert.equal(await look(), undefined, 'its target\'s changes are not seen');
});

test('a pass over the most files lodged watches leaves the event loop free', async () => {
  const many = path.join(tmp, 'many');
  fs.mkdirSync(many);
  const names = Array.from({ length: WATCHED_FILES_MAX }, (_, i) => `f${i}.py`);
  for (const n of names) fs.writeFileSync(path.join(many, n), '');
  const w = new CodeWatch(many, 'app.py');
  w.adopt(w.snapshot(), confineReported(many, names).files);
  // Timers keep firing while the pass runs: it yields between its batches.
  let ticks = 0;
  const tick = setInterval(() => ticks++, 0);
  w.changed(Date.now() + CHECK_INTERVAL_MS);
  await w.settled();
  clearInterval(tick);
  assert.equal(w.size, WATCHED_FILES_MAX + 2);
  assert.ok(ticks > 0, 'the loop ran during the pass');
});

test('a reported file written after its worker began to load counts as changed, once: the code that change started is not suspected again', async () => {
  const r = path.join(tmp, 'raced');
  fs.mkdirSync(r);
  fs.writeFileSync(path.join(r, 'app.py'), '');
  const old = path.join(r, 'old.py');
  const late = path.join(r, 'late.py');
  const later = path.join(r, 'later.py');
  fs.writeFileSync(old, '');
  bump(old, Date.now() / 1000 - 60); // untouched for a minute before the worker started
  const w = new CodeWatch(r, 'app.py');
  await w.settled();
  const startedAt = Date.now() - 1000;
  fs.writeFileSync(late, ''); // written while the worker loaded: which version it read is unknown
  w.adopt(w.snapshot(), [old, late], startedAt);
  await w.settled();
  const look = looker(w);
  assert.equal(await look(), late, 'the edit that raced the load is a change');
  assert.equal(await look(), late, 'and stays one until new code is adopted');
  // The reload it starts: its worker began before `later` was written too, yet this code
  // is not suspected again (an app that writes a module at each start reloads once).
  fs.writeFileSync(later, '');
  w.adopt(w.snapshot(), [old, late, later], Date.now() - 1000);
  await w.settled();
  assert.equal(await look(), undefined, 'no change: the baselines are what was there');
  // The next code started for an ordinary edit is watched the careful way again.
  bump(old, Date.now() / 1000);
  assert.equal(await look(), old);
  fs.writeFileSync(path.join(r, 'newest.py'), '');
  w.adopt(w.snapshot(), [old, late, later, path.join(r, 'newest.py')], Date.now() - 1000);
  await w.settled();
  assert.equal(await look(), path.join(r, 'newest.py'));
});
