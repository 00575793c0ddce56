#!/usr/bin/env node
// Brings a clone up to date before `npm run demo`, `npm test` and `npm run bench`:
// Debian packages (as root), npm packages, the addon, the TypeScript, mod_lodge.
// Each step runs only when its inputs are newer than its output, so a second run
// is silent and takes well under a second. Plain JavaScript with no dependencies:
// it has to run on a clone where `npm install` never ran.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const quiet = process.argv.includes('--quiet');
const say = (msg) => { if (!quiet) console.log(msg); };

// What the tests, the demo and the module build need from Debian.
// clang and libclang-rt-14-dev: the native fuzz targets (libFuzzer, ASan, UBSan runtimes);
// chromium: the status page's browser tests; prometheus: promtool checks the metrics text;
// libapache2-mod-wsgi-py3: the reference the environ parity test compares with; openssl:
// the HTTP/2 test's throw-away certificate; python3-fastapi, python3-starlette: the ASGI tenants;
// python3-dev: Python.h, for the worker's C part (native/python); strace: what Apache asks
// the kernel, for the walk cache's test.
const APT_PACKAGES = ['apache2', 'apache2-dev', 'python3', 'python3-dev', 'strace', 'python3-flask', 'python3-fastapi', 'python3-starlette', 'curl', 'procps', 'clang', 'libclang-rt-14-dev', 'chromium', 'prometheus', 'libapache2-mod-wsgi-py3', 'openssl'];
// What `npm run bench` adds: the load generator and the peers Lodge is measured against.
const BENCH_PACKAGES = ['wrk', 'libapache2-mod-passenger', 'passenger', 'uwsgi', 'uwsgi-plugin-python3', 'libapache2-mod-proxy-uwsgi', 'python3-uvicorn', 'nghttp2-client'];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts, stdio: 'pipe' });
  if (r.status !== 0) {
    process.stderr.write(r.stdout || '');
    process.stderr.write(r.stderr || '');
    const why = r.error ? r.error.message : `exit status ${r.status}`;
    throw new Error(`build step failed: ${cmd} ${args.join(' ')} (${why})`);
  }
  if (!quiet && r.stdout) process.stdout.write(r.stdout);
  return r.stdout;
}

function newestMtime(p) {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of fs.readdirSync(p)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    newest = Math.max(newest, newestMtime(path.join(p, name)));
  }
  return newest;
}

function stale(output, inputs) {
  if (!fs.existsSync(output)) return true;
  const built = fs.statSync(output).mtimeMs;
  return inputs.some((i) => newestMtime(path.join(root, i)) > built);
}

function aptPackages() {
  if (process.getuid() !== 0) return;
  const wanted = process.argv.includes('--bench') ? [...APT_PACKAGES, ...BENCH_PACKAGES] : APT_PACKAGES;
  const missing = wanted.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
  if (missing.length === 0) return;
  console.log(`lodge: installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Keep package scripts from starting the system Apache on port 80.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !fs.existsSync(policy);
  if (ownPolicy) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    run('apt-get', ['update', '-qq'], { env });
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
  } finally {
    if (ownPolicy) fs.rmSync(policy, { force: true });
  }
}

function npmPackages() {
  const stamp = path.join(root, 'node_modules', '.package-lock.json');
  if (!stale(stamp, ['package.json'])) return;
  say('lodge: installing npm packages');
  // --ignore-scripts: this script is the package's own install step.
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund']);
}

function addon() {
  const out = path.join(root, 'build', 'Release', 'lodge_posix.node');
  const spawner = path.join(root, 'build', 'Release', 'lodge-spawn');
  const worker = path.join(root, 'build', 'Release', 'lodge_worker.node');
  const inputs = ['native/addon', 'native/spawn', 'binding.gyp'];
  // lodge-spawn includes the protocol's generated header (its exit status); the addon does not.
  if (!stale(out, inputs) && !stale(worker, inputs) && !stale(spawner, [...inputs, 'native/apache/lodge_protocol.h'])) return;
  say('lodge: building the native addon');
  const gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  // configure + build, not rebuild: rebuild empties build/, where mod_lodge lives too.
  // Node's own headers (no download: this may run offline); npm passes its nodedir,
  // a direct `node scripts/build.js` does not.
  const nodedir = process.env.npm_config_nodedir || (fs.existsSync('/usr/include/node/node.h') ? '/usr' : '');
  const dirArg = nodedir ? [`--nodedir=${nodedir}`] : [];
  // A binding.gyp newer than the Makefile has new targets: configure again.
  if (stale(path.join(root, 'build', 'Makefile'), ['binding.gyp'])) run(process.execPath, [gyp, 'configure', ...dirArg]);
  run(process.execPath, [gyp, 'build', ...dirArg]);
}

// The protocol's numbers, from sidecar/src/protocol/protocol.json into C, TypeScript, Python
// and PROTOCOL.md, before anything that includes them is compiled.
function protocol() {
  const changed = require('./gen-protocol.js').write(root);
  for (const rel of changed) say(`lodge: wrote ${rel} from protocol.json`);
}

function typescript() {
  const stamp = path.join(root, 'dist', '.built');
  if (!stale(stamp, ['sidecar/src', 'test', 'tsconfig.json'])) return;
  say('lodge: compiling TypeScript');
  run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', '.']);
  fs.writeFileSync(stamp, new Date().toISOString() + '\n');
}

// The runtime's own modules compiled beside their sources, by the interpreter lodged
// runs by default: a worker is already the tenant and may not write there, so without
// them each worker start compiles them again (~15 ms of a cold start, python3 -X importtime).
function runtimeBytecode() {
  const python = '/usr/bin/python3';
  const stamp = path.join(root, 'build', '.runtime-bytecode');
  if (!fs.existsSync(python) || !stale(stamp, ['sidecar/runtimes'])) return;
  say('lodge: compiling the Python runtime to bytecode');
  run(python, ['-m', 'compileall', '-q', path.join(root, 'sidecar', 'runtimes')]);
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.writeFileSync(stamp, new Date().toISOString() + '\n');
}

// The Python worker's C part (native/python: REQ pairs, the scoreboard slot), for the interpreter lodged
// runs by default. Its name carries that interpreter's extension suffix, so a host's other
// Python (LodgeRuntimes) never imports it and runs the same code in Python instead.
function pythonSpeedups() {
  const python = '/usr/bin/python3';
  if (!fs.existsSync(python)) return;
  const asked = spawnSync(python, ['-c', "import sysconfig as s; print(s.get_paths()['include']); print(s.get_config_var('EXT_SUFFIX'))"], { encoding: 'utf8' });
  if (asked.status !== 0) throw new Error(`build step failed: ${python} could not say its include directory`);
  const [include, suffix] = asked.stdout.trim().split('\n');
  const out = path.join(root, 'build', 'python', `_lodge_speedups${suffix}`);
  if (!stale(out, ['native/python'])) return;
  say('lodge: building the Python worker\'s C part');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const sources = ['lodge_speedups.c', 'lodge_board.c'].map((f) => path.join(root, 'native', 'python', f));
  run('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', `-I${include}`, '-o', out, ...sources]);
}

function apacheModule(apxs, outDir) {
  const out = path.join(root, outDir, 'mod_lodge.so');
  if (!stale(out, ['native/apache'])) return;
  say(`lodge: building mod_lodge with ${apxs}`);
  // The module's default LodgeDaemonCommand: this node, this tree's lodged.
  const env = { ...process.env, LODGE_NODE: process.execPath, LODGE_LODGED: path.join(root, 'dist', 'sidecar', 'src', 'main.js') };
  run('bash', ['native/apache/build.sh', apxs, path.join(root, outDir)], { env });
}

function main() {
  if (process.env.LODGE_BUILDING) return; // npm install re-entering us
  process.env.LODGE_BUILDING = '1';
  aptPackages();
  npmPackages();
  protocol();
  addon();
  typescript();
  runtimeBytecode();
  pythonSpeedups();
  apacheModule(process.env.APXS || 'apxs', 'build/apache24');
  if (process.env.APXS13) apacheModule(process.env.APXS13, 'build/apache13');
}

try {
  main();
} catch (err) {
  console.error(`lodge: ${err.message}`);
  process.exit(1);
}
