import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { processesOf } from './helpers/users';
import { withLoop } from './helpers/load';
import { checkConfig } from '../sidecar/src/config/load';
import { FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import { Registry } from '../sidecar/src/pool/registry';

const app = (version: string) => `
import os
from helper import extra
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %s %d %s" % ("${version}", extra(), os.getpid(), os.environ.get("COLOR", "-"))).encode()]
`;
const helper = (v: string) => `def extra():\n    return "${v}"\n`;

let site: Site;
let dir: string;
before(async () => {
  site = await startSite({
    rl: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 2\n', 'app.py': app('v0'), 'helper.py': helper('h0') },
    idle: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeIdle 1\n', 'app.py': app('idle'), 'helper.py': helper('h') },
  });
  dir = path.join(site.root, 'rl');
});
after(async () => site?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('twenty edits of app.py under load: no request fails, and the new code is live within a second', async () => {
  const edits: number[] = [];
  const replies = await withLoop(site, 'rl', async (loop) => {
    await eventually(() => loop.replies.length > 5, 'the loop is running');
    for (let i = 1; i <= 20; i++) {
      fs.writeFileSync(path.join(dir, 'app.py'), app(`v${i}`));
      edits.push(Date.now());
      await sleep(1300);
    }
    return loop.replies;
  }, 1);
  const failed = replies.filter((r) => r.status !== 200);
  assert.deepEqual(failed, [], 'no failed request during twenty reloads');
  const late: string[] = [];
  for (const r of replies) {
    const v = Number(/^v(\d+)/.exec(r.text)![1]);
    const due = edits.filter((t) => t + 1000 < r.start).length; // edits saved over 1 s before it started
    if (v < due) late.push(`started ${r.start - edits[due - 1]} ms after edit ${due}, ran v${v}`);
  }
  assert.deepEqual(late.slice(0, 5), [], `every request that started over 1 s after an edit ran the edited code (${late.length} did not)`);
  assert.match(replies.at(-1)!.text, /^v20 /);
});

test('an edit of a module the app imports is picked up too', async () => {
  fs.writeFileSync(path.join(dir, 'helper.py'), helper('h1'));
  await eventually(async () => / h1 /.test((await site.get('rl', '/')).text), 'helper.py edit live');
});

test('a broken edit leaves the old code serving, logs the error, and the fix goes live', async () => {
  const replies = await withLoop(site, 'rl', async (loop) => {
    await eventually(() => loop.replies.length > 3, 'the loop is running');
    fs.writeFileSync(path.join(dir, 'app.py'), 'def application(environ, start_response:\n    pass\n');
    await eventually(() => /SyntaxError/.test(site.tenantLog('rl')), 'the syntax error is in the tenant log');
    assert.match(site.tenantLog('rl'), /app\.py", line 1/);
    await sleep(1500);
    fs.writeFileSync(path.join(dir, 'app.py'), app('fixed'));
    await eventually(() => /^fixed /.test(loop.replies.at(-1)?.text ?? ''), 'the fix is live', 15_000);
    return loop.replies;
  }, 1);
  assert.deepEqual(replies.filter((r) => r.status !== 200), [], 'the broken edit cost no request');
});

test('touching tmp/restart.txt starts fresh workers; a LodgeEnv change reaches the next requests', async () => {
  const before = (await site.get('rl', '/')).text.split(' ')[2];
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tmp', 'restart.txt'), '');
  await eventually(async () => {
    const pids = new Set<string>();
    for (let i = 0; i < 4; i++) pids.add((await site.get('rl', '/')).text.split(' ')[2]);
    return !pids.has(before);
  }, 'no request is served by the old worker any more');

  fs.appendFileSync(path.join(dir, '.htaccess'), 'LodgeEnv COLOR teal\n');
  const r = await site.get('rl', '/');
  assert.equal(r.status, 200);
  assert.match(r.text, / teal$/, 'the very next request sees the new environment');
});

test('settings changed and changed back get a pool that serves, not the retired one', () => {
  // lodged's registry, driven directly: the switch back usually comes before the
  // reaper forgets the retired pool, and a request handed to it would never be served.
  // lodged takes the settings from the app's own file, so the file changes each time.
  const registry = new Registry(checkConfig({}, 'test'), true);
  const htaccess = path.join(dir, '.htaccess');
  const saved = fs.readFileSync(htaccess);
  const st = fs.statSync(htaccess);
  const appFrame = (processes: string) => {
    fs.writeFileSync(htaccess, `LodgeApp wsgi app.py\nLodgeProcesses ${processes}\n`);
    fs.chownSync(htaccess, st.uid, st.gid);
    return encodeFrame(FrameType.APP, encodePairs([['root', dir], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ['processes', processes]]));
  };
  try {
    const first = registry.poolFor(appFrame('2'));
    const changed = registry.poolFor(appFrame('3'));
    assert.ok(first.isRetired, 'the old settings are retired');
    assert.equal(changed.spec.limits.processes, 3);
    const back = registry.poolFor(appFrame('2'));
    assert.ok(!back.isRetired, 'the settings in force again have a live pool');
    assert.notEqual(back, first);
    assert.ok(changed.isRetired);
  } finally {
    registry.close();
    fs.writeFileSync(htaccess, saved);
    fs.chownSync(htaccess, st.uid, st.gid);
  }
});

test('an app with no traffic for LodgeIdle holds no process; the next request starts it again', async () => {
  const uid = site.users.idle.uid;
  assert.equal((await site.get('idle', '/')).status, 200);
  assert.ok(processesOf(uid).length > 0, 'a worker runs while the app is in use');
  await eventually(() => processesOf(uid).length === 0, 'idle workers are reaped', 15_000);
  const r = await site.get('idle', '/');
  assert.equal(r.status, 200);
  assert.match(r.text, /^idle /);
});
