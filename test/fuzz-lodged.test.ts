import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inputFromJson, lodgedTargets, runTarget } from './helpers/fuzz-lodged';

// A short bounded run of lodged's fuzz targets (test/helpers/fuzz-lodged.ts), and a
// replay of every saved case. `npm run fuzz` runs the same targets for a million
// inputs each. The seed is fixed so that a failure here is the same on every run.
const RUNS = 2000;
const SEED = 20261201;

for (const name of Object.keys(lodgedTargets)) {
  test(`${name}: ${RUNS} random inputs keep the target's properties`, () => {
    runTarget(name, RUNS, SEED);
  });
}

const regressions = path.join(__dirname, '..', '..', 'test', 'fuzz-regressions');

test('every saved lodged case still holds', () => {
  const files = fs.readdirSync(regressions).filter((f) => f.endsWith('.json'));
  let replayed = 0;
  for (const file of files) {
    const saved = JSON.parse(fs.readFileSync(path.join(regressions, file), 'utf8'));
    // The hostile worker's cases are replayed by test/fuzz-hostile-worker.test.ts.
    if (saved.target === 'hostile-worker') continue;
    const target = lodgedTargets[saved.target];
    assert.ok(target, `${file}: target '${saved.target}' exists`);
    target.check(inputFromJson(saved));
    replayed++;
  }
  assert.ok(replayed > 0, `cases in ${regressions}`);
});
