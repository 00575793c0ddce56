import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

// mod_lodge's frame, pair, HEAD and directive parsers under libFuzzer with ASan and
// UBSan (native/fuzz/): built here, each run briefly from its seed corpus, and every
// saved crash in native/fuzz/regressions/ replayed. `npm run fuzz` runs each for a
// million inputs.
const repo = path.join(__dirname, '..', '..');
const fuzzDir = path.join(repo, 'native', 'fuzz');
const out = path.join(repo, 'build', 'fuzz');
const TARGETS = ['frame', 'head', 'directive'];
const RUNS = 20000;

let built: string | undefined;
function build(): void {
  if (built !== undefined) return;
  const r = spawnSync('sh', [path.join(fuzzDir, 'build.sh'), out], { encoding: 'utf8' });
  built = r.status === 0 ? '' : `native/fuzz/build.sh exited ${r.status}${r.status === 2 ? ' (needs Debian\'s clang and libclang-rt-14-dev: node scripts/build.js installs them as root)' : ''}:\n${r.stderr}`;
}

function fuzzer(target: string, args: string[]) {
  return spawnSync(path.join(out, `fuzz_${target}`), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

for (const target of TARGETS) {
  test(`fuzz_${target}: ${RUNS} inputs from its corpus, no crash, leak or undefined behaviour`, () => {
    build();
    assert.equal(built, '', built);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `lodge-fuzz-${target}-`));
    try {
      const dict = path.join(fuzzDir, `${target}.dict`);
      const r = fuzzer(target, [
        `-runs=${RUNS}`, '-seed=1', `-artifact_prefix=${work}/`,
        ...(fs.existsSync(dict) ? [`-dict=${dict}`] : []),
        work, path.join(fuzzDir, 'corpus', target),
      ]);
      assert.equal(r.status, 0, r.stderr.slice(-4000));
      assert.match(r.stderr, new RegExp(`Done ${RUNS} runs`));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test(`fuzz_${target}: every saved case in native/fuzz/regressions/${target} passes`, () => {
    build();
    assert.equal(built, '', built);
    const dir = path.join(fuzzDir, 'regressions', target);
    const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
    assert.ok(files.length > 0, `cases in ${dir}`);
    const r = fuzzer(target, files);
    assert.equal(r.status, 0, r.stderr.slice(-4000));
    for (const f of files) assert.ok(r.stderr.includes(`Running: ${f}`), `${f} was run`);
  });
}
