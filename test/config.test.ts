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
