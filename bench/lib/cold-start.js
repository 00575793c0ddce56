'use strict';
// How long an idle app's first request takes: a Flask app with no worker (reaped,
// its pool forgotten) is asked once, through the real Apache + mod_lodge, and the
// time from the request sent to the response received is taken; TRIES times, the
// app reaped between tries.
//
//   node bench/lib/cold-start.js --work DIR --out FILE --user NAME --port P --tries N
//
// The app is the bench's Flask app (bench/apps/flask_app.py) behind a wrapper,
// cold.py, that notes the wall clock before and after importing it and tells both
// in the first response's headers, so that each try splits into
//   before the app's import: Apache, mod_lodge, lodged (spawn, lodge-spawn), the
//     interpreter's start and the runtime's own imports;
//   the app's import (Flask's, for the most part);
//   after it: READY to lodged, the request handed to the worker, the app's first
//     answer, the way back.
// The interpreter's start with the runtime's imports is also timed by itself, as the
// tenant (python3 -I wsgi_worker.py with no fd 3: it imports everything it will need,
// then exits as a worker whose channel is missing), so that lodged's own part of the
// first stretch is what remains.
//
// Traffic goes to 127.0.0.1 only; every phase is bounded in time; the sandbox it
// starts is stopped at the end, on SIGINT/SIGTERM, and on any failure. The pids of
// the sandbox's Apache and lodged are written to DIR/pids for run.sh to check.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { inSandbox, processesOf, sayer, sleep, stepArgs } = require('./sandbox-step');
const { WSGI_RUNTIME } = require(path.join(__dirname, '..', '..', 'dist', 'sidecar', 'src', 'pool', 'worker-process'));

const HOST = 'cold.localhost';
const PYTHON = '/usr/bin/python3';
const HTACCESS = 'LodgeApp wsgi cold.py\nLodgeProcesses 1\nLodgeIdle 1\n';
const WRAPPER = `import time
_t0 = time.time()
from flask_app import application as _app
_t1 = time.time()
_told = []


def application(environ, start_response):
    # The first response of this process says when the app's import began and ended.
    def start(status, headers, exc_info=None):
        if not _told:
            _told.append(1)
            headers = headers + [("X-Import-Start", "%.6f" % _t0), ("X-Import-End", "%.6f" % _t1)]
        return start_response(status, headers, exc_info)
    return _app(environ, start)
`;
// Bounds: one request, the reaping after it, the runtime's own start.
const REQUEST_MS = 30_000;
const REAP_MS = 30_000;
/**
 * After the worker is reaped: its pool is forgotten on the registry's next pass (once a
 * second), and lodged's collection after reaping (heap-trim.ts) comes on a pass 2 s
 * after the last request; a try begun then would measure that collection too.
 */
const FORGET_MS = 3000;

const say = sayer('cold start');
/** The wall clock in ms, to the µs: the same clock as Python's time.time(). */
const wallMs = () => performance.timeOrigin + performance.now();

function get(port, p) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: { Host: HOST }, agent: false, timeout: REQUEST_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', (err) => resolve({ status: 0, headers: {}, body: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: err.message }));
  });
}

async function reaped(uid) {
  const until = Date.now() + REAP_MS;
  while (processesOf(uid).length > 0) {
    if (Date.now() > until) throw new Error(`the app's worker (uid ${uid}) still runs ${REAP_MS / 1000} s after its request`);
    await sleep(100);
  }
  await sleep(FORGET_MS);
}

/** The app folder: the bench's Flask app and the wrapper, owned by user. */
function makeApp(root, user) {
  const dir = path.join(root, 'cold');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(__dirname, '..', 'apps', 'flask_app.py'), path.join(dir, 'flask_app.py'));
  fs.writeFileSync(path.join(dir, 'cold.py'), WRAPPER);
  fs.writeFileSync(path.join(dir, '.htaccess'), HTACCESS);
  execFileSync('chown', ['-R', `${user}:${user}`, dir]);
  execFileSync('chmod', ['-R', 'u=rwX,go=rX', dir]);
  fs.chmodSync(root, 0o755);
}

/**
 * ms the interpreter takes to start and import what the runtime imports, as the
 * tenant (setpriv, as lodge-spawn would leave it), each of n runs.
 */
function runtimeStartMs(user, n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', PYTHON, '-I', WSGI_RUNTIME], { cwd: '/', stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    const t = performance.now() - t0;
    // The runtime exits at once with its protocol code when fd 3 is no socket.
    if (!/fd 3 is not a socket/.test(r.stderr?.toString() ?? '')) throw new Error(`the runtime started alone said: ${r.stderr?.toString().slice(0, 200) || r.error?.message}`);
    ms.push(t);
  }
  return ms;
}

/** setpriv's own start (the same command, running /bin/true), to subtract. */
function setprivMs(user, n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', '/bin/true'], { stdio: 'ignore' });
    ms.push(performance.now() - t0);
  }
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};
const round1 = (x) => (x === null ? null : Math.round(x * 10) / 10);

async function measure(o) {
  const uid = Number(execFileSync('id', ['-u', o.user], { encoding: 'utf8' }).trim());
  // One request first, not counted: Apache's children, lodged's code paths and the
  // page cache are then as warm as on a host that has served anything at all.
  const first = await get(o.port, '/');
  if (first.status !== 200) throw new Error(`the app answered ${first.status}: ${first.body.slice(0, 300)}`);
  const tries = [];
  for (let i = 0; i < o.tries; i++) {
    await reaped(uid);
    const sent = wallMs();
    const r = await get(o.port, '/');
    const got = wallMs();
    if (r.status !== 200) throw new Error(`try ${i + 1}: the app answered ${r.status}: ${r.body.slice(0, 300)}`);
    const start = Number(r.headers['x-import-start']) * 1000;
    const end = Number(r.headers['x-import-end']) * 1000;
    if (!start || !end) throw new Error(`try ${i + 1}: the response came from a worker that had served before (no X-Import-* headers): was the app reaped?`);
    // The same app warm, at once: what a request costs when no start is in it.
    const w0 = wallMs();
    const warm = await get(o.port, '/');
    const warmMs = wallMs() - w0;
    if (warm.status !== 200) throw new Error(`try ${i + 1}: the warm request answered ${warm.status}`);
    tries.push({ totalMs: got - sent, beforeImportMs: start - sent, importMs: end - start, afterImportMs: got - end, warmMs });
    say(`try ${i + 1}: ${(got - sent).toFixed(1)} ms (before the app's import ${(start - sent).toFixed(1)}, import ${(end - start).toFixed(1)}, after ${(got - end).toFixed(1)}; warm ${warmMs.toFixed(1)})`);
  }
  const runtime = runtimeStartMs(o.user, o.tries);
  const setpriv = setprivMs(o.user, o.tries);
  const m = (k) => round1(median(tries.map((t) => t[k])));
  const mx = (k) => round1(Math.max(...tries.map((t) => t[k])));
  const runtimeMs = round1(median(runtime) - median(setpriv));
  const summary = {
    tries: tries.length,
    median: { totalMs: m('totalMs'), beforeImportMs: m('beforeImportMs'), importMs: m('importMs'), afterImportMs: m('afterImportMs'), warmMs: m('warmMs') },
    max: { totalMs: mx('totalMs'), beforeImportMs: mx('beforeImportMs'), importMs: mx('importMs'), afterImportMs: mx('afterImportMs'), warmMs: mx('warmMs') },
    runtimeStartMs: runtimeMs,
    // Of the stretch before the app's import, what is not the interpreter's start and the runtime's imports.
    lodgedAndSpawnMs: round1(m('beforeImportMs') - runtimeMs),
    load1: Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
  };
  say(`median ${summary.median.totalMs} ms, max ${summary.max.totalMs} ms over ${tries.length} tries; ` +
    `before the import ${summary.median.beforeImportMs} (of it the interpreter and the runtime's imports ${runtimeMs}, ` +
    `so Apache + lodged + spawn ${summary.lodgedAndSpawnMs}), import ${summary.median.importMs}, after ${summary.median.afterImportMs}; warm ${summary.median.warmMs}`);
  return { ...summary, each: tries.map((t) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round1(v)]))) };
}

async function main() {
  const o = stepArgs('cold start', process.argv.slice(2), 'tries');
  if (!Number.isInteger(o.tries) || o.tries < 1 || o.tries > 200) throw new Error(`cold start: --tries must be a whole number from 1 to 200, got ${o.tries}`);
  const root = path.join(o.work, 'root');
  makeApp(root, o.user);
  process.env.TMPDIR = o.work;
  say(`${o.tries} cold starts of a Flask app in ${root}/cold; starting the sandbox on 127.0.0.1:${o.port}`);
  await inSandbox({ work: o.work, out: o.out, prefix: 'coldstart', sandbox: { root, port: o.port }, logs: ['error.log', 'lodged.log'], say }, () => measure(o));
}

main().catch((err) => {
  process.stderr.write(`cold start: ${err.stack ?? err}\n`);
  process.exit(1);
});
