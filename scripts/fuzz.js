#!/usr/bin/env node
// `npm run fuzz`: the long runs of every fuzz target. `npm test` runs the same
// targets briefly (test/fuzz-*.test.ts).
//
//   node scripts/fuzz.js [--runs N] [--only NAME,...] [--hostile N] [--hostile-seconds S]
//
// native   mod_lodge's parsers under libFuzzer with ASan and UBSan (native/fuzz/),
//          N inputs each (default 1,000,000); a crash lands in
//          native/fuzz/regressions/<target>/, which npm test replays.
// lodged   the fast-check targets of test/helpers/fuzz-lodged.ts, N inputs each,
//          split over one process per core; a failing input, shrunk, lands in
//          test/fuzz-regressions/, which npm test replays.
// hostile  test/fuzz-hostile-worker.test.ts with --hostile requests (default
//          5,000) per Apache, bounded by --hostile-seconds (default 480) each.
//
// Expects a built tree (npm run fuzz runs scripts/build.js first). Prints one line
// per target: inputs, seconds, inputs/s; exits 1 if any target failed.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const NATIVE = ['frame', 'head', 'directive'];

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const runs = Number(option('--runs', 1_000_000));
const only = option('--only', '').split(',').filter(Boolean);
const hostileRequests = Number(option('--hostile', 5000));
const hostileSeconds = Number(option('--hostile-seconds', 480));
const wanted = (name) => only.length === 0 || only.some((o) => name === o || name.startsWith(`${o}:`));

const results = [];
function report(name, inputs, secs, ok, detail = '') {
  const rate = secs > 0 ? Math.round(inputs / secs) : inputs;
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name.padEnd(22)} ${String(inputs).padStart(9)} inputs ${secs.toFixed(1).padStart(7)} s ${String(rate).padStart(8)}/s ${detail}`);
}

// ------------------------------------------------------------------- native

function runNative(target) {
  const bin = path.join(root, 'build', 'fuzz', `fuzz_${target}`);
  const fuzzDir = path.join(root, 'native', 'fuzz');
  // The corpus grows across runs here, outside the tree; the tree keeps the seeds.
  const work = path.join(root, 'build', 'fuzz', `corpus-${target}`);
  const crashes = path.join(fuzzDir, 'regressions', target);
  fs.mkdirSync(work, { recursive: true });
  const dict = path.join(fuzzDir, `${target}.dict`);
  const args = [`-runs=${runs}`, `-artifact_prefix=${crashes}/crash-`, '-print_final_stats=1',
    ...(fs.existsSync(dict) ? [`-dict=${dict}`] : []), work, path.join(fuzzDir, 'corpus', target)];
  const started = Date.now();
  const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const secs = (Date.now() - started) / 1000;
  const done = /Done (\d+) runs/.exec(r.stderr);
  const ok = r.status === 0 && done !== null;
  if (!ok) console.error(r.stderr.split('\n').slice(-40).join('\n'));
  report(`native:${target}`, done ? Number(done[1]) : 0, secs, ok, ok ? '' : `(exit ${r.status}; the input is in native/fuzz/regressions/${target}/)`);
}

// ------------------------------------------------------------------- lodged

// One child per core, each with its own seed and share of the runs.
function runLodged(target) {
  const helper = path.join(root, 'dist', 'test', 'helpers', 'fuzz-lodged.js');
  const cores = Math.max(1, Math.min(os.cpus().length, 4));
  const share = Math.ceil(runs / cores);
  const base = Date.now() % 1_000_000_000;
  const started = Date.now();
  const children = [];
  for (let i = 0; i < cores; i++) {
    const seed = base + i;
    const code = `const f = require(${JSON.stringify(helper)}).findFailure(${JSON.stringify(target)}, ${share}, ${seed});
      process.stdout.write(JSON.stringify(f ?? null));`;
    children.push(new Promise((resolve) => {
      const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.on('close', (status) => resolve({ status, seed, found: out ? JSON.parse(out) : undefined }));
    }));
  }
  return Promise.all(children).then((ends) => {
    const secs = (Date.now() - started) / 1000;
    let ok = true;
    for (const end of ends) {
      if (end.status !== 0) ok = false;
      if (end.found) {
        ok = false;
        const file = path.join(root, 'test', 'fuzz-regressions', `${target}-${end.seed}.json`);
        fs.writeFileSync(file, `${JSON.stringify(end.found, null, 2)}\n`);
        console.error(`${target}: ${end.found.note}\n  saved as ${path.relative(root, file)}`);
      }
    }
    report(`lodged:${target}`, share * cores, secs, ok, `(${cores} processes, seeds ${base}..${base + cores - 1})`);
  });
}

// ------------------------------------------------------------------ hostile

function runHostile() {
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', path.join(root, 'dist', 'test', 'fuzz-hostile-worker.test.js')], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, LODGE_FUZZ_HOSTILE_REQUESTS: String(hostileRequests), LODGE_FUZZ_HOSTILE_SECONDS: String(hostileSeconds) },
  });
  const secs = (Date.now() - started) / 1000;
  const lines = [...r.stdout.matchAll(/# (hostile (\S+): (\d+) requests in [^\n]*)/g)];
  const total = lines.reduce((n, m) => n + Number(m[3]), 0);
  if (r.status !== 0) console.error(r.stdout.split('\n').filter((l) => /not ok|error:|seed \d+/.test(l)).slice(0, 40).join('\n'));
  report('hostile', total, secs, r.status === 0, lines.map((m) => `\n       ${m[1]}`).join(''));
}

async function main() {
  if (NATIVE.some((t) => wanted(`native:${t}`))) {
    const b = spawnSync('sh', [path.join(root, 'native', 'fuzz', 'build.sh')], { stdio: 'inherit' });
    if (b.status !== 0) {
      console.error(`native/fuzz/build.sh exited ${b.status}${b.status === 2 ? ': install clang and libclang-rt-14-dev (scripts/build.js does, as root)' : ''}`);
      process.exit(1);
    }
    for (const t of NATIVE) if (wanted(`native:${t}`)) runNative(t);
  }
  const helper = require(path.join(root, 'dist', 'test', 'helpers', 'fuzz-lodged.js'));
  for (const t of Object.keys(helper.lodgedTargets)) if (wanted(`lodged:${t}`)) await runLodged(t);
  if (wanted('hostile')) runHostile();
  const failed = results.filter((r) => !r.ok).map((r) => r.name);
  console.log(failed.length ? `fuzz: failed: ${failed.join(', ')}` : `fuzz: all ${results.length} targets passed`);
  process.exit(failed.length ? 1 : 0);
}

main();
