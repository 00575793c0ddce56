import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError } from '../sidecar/src/errors';
import { checkConfig } from '../sidecar/src/config/load';

const LODGED = path.join(__dirname, '..', 'sidecar', 'src', 'main.js');

function runLodged(content: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-conf-'));
  const file = path.join(dir, 'lodged.json');
  fs.writeFileSync(file, content);
  const r = spawnSync(process.execPath, [LODGED, '--config', file, '--socket', path.join(dir, 's.sock')], { encoding: 'utf8', timeout: 10_000 });
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

test('a wrong setting is refused with a message naming the key, and lodged does not start', () => {
  const r = runLodged(JSON.stringify({ maxQueue: 'lots', limits: { timeout: -3 }, sockett: '/tmp/x' }));
  assert.equal(r.status, 78);
  assert.match(r.stderr, /maxQueue: .*number/i);
  assert.match(r.stderr, /limits\.timeout: /);
  assert.match(r.stderr, /unknown key 'sockett'/);
  assert.match(r.stderr, /not started/);
  assert.equal(fs.existsSync('/tmp/x'), false);
});

test('a file that is not JSON is named with the parser error', () => {
  const r = runLodged('{ "maxQueue": 3, }');
  assert.equal(r.status, 78);
  assert.match(r.stderr, /lodged\.json is not valid JSON/);
});

test('no settings at all means working defaults; tenant defaults never exceed host limits', () => {
  const s = checkConfig({}, 'test');
  assert.equal(s.socket, '/run/lodge/lodged.sock');
  assert.equal(s.defaults.timeout, 30);
  const capped = checkConfig({ limits: { processes: 2, memory: '64M' } }, 'test');
  assert.equal(capped.defaults.processes, 2);
  assert.equal(capped.limits.memory, 64 * 1024 * 1024);
  assert.throws(() => checkConfig({ limits: { memory: '12 parsecs' } }, 'test'), ConfigError);
});

test('concurrency: defaults.concurrency 10 and limits.concurrency 64 unless set; 1 to 64 taken, 0 and 65 refused by name', () => {
  const s = checkConfig({}, 'test');
  assert.equal(s.defaults.concurrency, 10);
  assert.equal(s.limits.concurrency, 64);
  const set = checkConfig({ defaults: { concurrency: 1 }, limits: { concurrency: 64 } }, 'test');
  assert.equal(set.defaults.concurrency, 1);
  assert.equal(set.limits.concurrency, 64);
  assert.equal(checkConfig({ limits: { concurrency: 4 } }, 'test').defaults.concurrency, 4, 'the default never exceeds the cap');
  for (const where of ['defaults', 'limits']) {
    for (const bad of [0, 65, 2.5]) {
      assert.throws(() => checkConfig({ [where]: { concurrency: bad } }, 'test'), (err: unknown) => err instanceof ConfigError && err.message.includes(`${where}.concurrency`), `${where}.concurrency ${bad}`);
    }
  }
});
