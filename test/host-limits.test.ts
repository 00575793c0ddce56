import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, RefusedError } from '../sidecar/src/errors';
import { checkConfig } from '../sidecar/src/config/load';
import { openLog } from '../sidecar/src/log';
import { parseAppSpec } from '../sidecar/src/pool/app-spec';
import { checkOwnership } from '../sidecar/src/pool/ownership';
import { FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';

// The host's side of the watchdogs in lodged's settings: the task limit, the allowed
// roots, how cgroups are used; and how a tenant's asking is held to them.

openLog(undefined, 'error'); // the clamping warnings below are expected

test('the task limit is the host\'s: a default that works, capped by limits.tasks', () => {
  assert.equal(checkConfig({}, 'test').defaults.tasks, 512);
  const s = checkConfig({ limits: { tasks: 64 } }, 'test');
  assert.equal(s.limits.tasks, 64);
  assert.equal(s.defaults.tasks, 64);
  assert.throws(() => checkConfig({ limits: { tasks: 2 } }, 'test'), /limits\.tasks/);
});

test('allowedRoots takes absolute folders; cgroups takes auto, v1, v2 or off', () => {
  assert.deepEqual(checkConfig({}, 'test').allowedRoots, ['/']);
  assert.deepEqual(checkConfig({ allowedRoots: ['/srv/www/', '/home'] }, 'test').allowedRoots, ['/srv/www', '/home']);
  assert.throws(() => checkConfig({ allowedRoots: ['srv'] }, 'test'), ConfigError);
  assert.throws(() => checkConfig({ allowedRoots: ['/srv/../etc'] }, 'test'), ConfigError);
  assert.equal(checkConfig({}, 'test').cgroups, 'auto');
  assert.throws(() => checkConfig({ cgroups: 'v3' }, 'test'), /cgroups/);
});

test('a tenant\'s values over the host\'s caps are clamped, a forged task count too', () => {
  const settings = checkConfig({ limits: { memory: '128M', cpu: 5, tasks: 100 } }, 'test');
  const app = encodeFrame(FrameType.APP, encodePairs([
    ['root', '/srv/www/t'], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''],
    ['memory', String(1 << 30)], ['cpu', '60'], ['tasks', '100000'],
  ]));
  const spec = parseAppSpec(app, settings);
  assert.equal(spec.limits.memory, 128 * 1024 * 1024);
  assert.equal(spec.limits.cpu, 5);
  assert.equal(spec.limits.tasks, 100);
});

test('an app directory outside the allowed roots is refused before anything else is looked at', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-roots-'));
  try {
    fs.writeFileSync(path.join(dir, 'app.py'), '');
    const rules = { minUid: 1000, allowedRoots: ['/srv/www'], tenantLog: 'logs/lodge.log' };
    assert.throws(() => checkOwnership(dir, 'app.py', 1000, false, rules), (err: unknown) => err instanceof RefusedError && /outside the host's allowed roots/.test(err.message));
    // A prefix that is not a whole folder name does not count.
    assert.throws(() => checkOwnership(dir, 'app.py', 1000, false, { ...rules, allowedRoots: [dir.slice(0, -2)] }), RefusedError);
    assert.deepEqual(checkOwnership(dir, 'app.py', 1000, false, { ...rules, allowedRoots: [path.dirname(dir)] }), { uid: process.getuid!(), gid: process.getgid!() });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
