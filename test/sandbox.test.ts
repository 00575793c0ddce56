import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startSandbox } from '../sidecar/src/sandbox/sandbox';
import { forEachApache, freePort } from './helpers/site';
import { request } from './helpers/http';

const CLI = path.join(__dirname, '..', 'sidecar', 'src', 'cli', 'main.js');

/** Pids of the processes whose command line names dir. */
function processesNaming(dir: string): number[] {
  const r = spawnSync('ps', ['-e', '-o', 'pid=,args='], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(dir)).map((l) => Number(l.trim().split(/\s+/)[0]));
}

test('lodge sandbox --apache 1.3 without APXS13 says what is missing and starts nothing', () => {
  const env = { ...process.env };
  delete env.APXS13;
  const r = spawnSync(process.execPath, [CLI, 'sandbox', '--root', os.tmpdir(), '--apache', '1.3', '--port', '1'], { encoding: 'utf8', env, timeout: 10_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /Apache 1\.3: APXS13 is not set/);
  assert.doesNotMatch(r.stdout, /ready/);
});

forEachApache((apache) => {
  test('stopping the sandbox leaves no process of it behind, even with a connection just served', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-sbtest-'));
    fs.mkdirSync(path.join(root, 'quiet'));
    try {
      const sb = await startSandbox({ root, port: await freePort(), apache });
      // A child busy when the stop comes is what once kept an Apache 1.3 alive.
      const r = await request(sb.port, 'localhost', '/');
      assert.equal(r.status, 200);
      assert.match(r.text, /quiet\.localhost/);
      assert.ok(processesNaming(sb.runDir).length >= 2, 'Apache and lodged were running');
      await sb.stop();
      assert.deepEqual(processesNaming(sb.runDir), []);
      assert.equal(fs.existsSync(sb.runDir), false, 'the run directory is gone');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
