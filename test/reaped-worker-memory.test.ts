import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { checkConfig } from '../sidecar/src/config/load';
import { LodgeError } from '../sidecar/src/errors';
import { BODY_END_FRAME, FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import type { Exchange } from '../sidecar/src/pool/exchange';
import { Registry } from '../sidecar/src/pool/registry';
import type { Worker } from '../sidecar/src/pool/worker';
import { initWatchdogs } from '../sidecar/src/watchdog';
import { eventually, writeFiles } from './helpers/site';
import { TestUser, createUser, processesOf, removeUser } from './helpers/users';

// A host of mostly idle tenants: each app's worker is reaped after LodgeIdle, and
// what lodged kept of that worker (its objects, its socket with a 64 KiB read buffer)
// must go with it, or lodged grows by every worker it ever reaped.
const APPS = 12;
const APP = 'def application(e, s):\n    s("200 OK", [("Content-Type", "text/plain")])\n    return [b"ok"]\n';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let user: TestUser;
let root: string;
before(() => {
  // Rlimits and sampling only: this process is no lodged, and leaves the cgroups alone.
  initWatchdogs('off');
  user = createUser();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-reaped-'));
  fs.chmodSync(root, 0o755);
  for (let i = 0; i < APPS; i++) {
    const dir = path.join(root, `a${i}`);
    fs.mkdirSync(dir, { mode: 0o755 });
    writeFiles(dir, { '.htaccess': 'LodgeApp wsgi app.py\nLodgeIdle 1\n', 'app.py': APP });
  }
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, root]);
});
after(async () => {
  if (user) await removeUser(user);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** The side of a request that faces mod_lodge, as a worker sees it: a FakeExchange. */
function fakeExchange(): { ex: Exchange; done: Promise<string> } {
  let resolve!: (s: string) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
  const parts: Buffer[] = [];
  const ex: Exchange = {
    borrows: false,
    attach: () => {},
    grant: () => reject(new Error('FakeExchange: no worker is borrowed here')),
    fromWorker: (data, last) => {
      parts.push(data);
      if (last) resolve(Buffer.concat(parts).toString('latin1'));
    },
    fail: (err: LodgeError) => reject(err),
    pauseApache: () => {},
    resumeApache: () => {},
  };
  return { ex, done };
}

const appFrame = (dir: string) => encodeFrame(FrameType.APP, encodePairs([['root', dir], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ['idle', '1']]));
const reqFrame = encodeFrame(FrameType.REQ, encodePairs([['REQUEST_METHOD', 'GET'], ['SCRIPT_NAME', ''], ['PATH_INFO', '/'], ['QUERY_STRING', ''], ['wsgi.url_scheme', 'http']]));

test(`${APPS} apps reaped idle leave none of their workers in lodged's memory`, async (t) => {
  const registry = new Registry(checkConfig({}, 'test'), true);
  const workers: Array<WeakRef<Worker>> = [];
  try {
    await Promise.all(Array.from({ length: APPS }, async (_, i) => {
      const pool = registry.poolFor(appFrame(path.join(root, `a${i}`)));
      const { ex, done } = fakeExchange();
      pool.acquire(ex, [reqFrame, BODY_END_FRAME]);
      const response = await done;
      assert.match(response, /ok/, `a${i} answered`);
      for (const w of pool.workers) workers.push(new WeakRef(w));
    }));
    assert.equal(workers.length, APPS, 'one worker per app');
    await eventually(() => processesOf(user.uid).length === 0 && registry.pools.size === 0, 'every worker reaped, every pool forgotten', 30_000);
    // A WeakRef keeps its target until the job that read it ends: collect between turns.
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const kept = workers.filter((w) => w.deref() !== undefined).length;
    t.diagnostic(`workers still in memory after reaping: ${kept} of ${APPS}`);
    assert.equal(kept, 0, `${kept} of ${APPS} reaped workers are still held`);
  } finally {
    registry.close();
  }
});
