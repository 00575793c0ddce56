'use strict';
// What keeping the status model costs a real lodged: its RSS and PSS with no app,
// then after N apps were each asked once through the real Apache + mod_lodge and
// reaped idle; the JSON of those N apps as the host's status location serves it.
//
//   node bench/lib/status-cost.js --work DIR --out FILE --user NAME --port P --apps N
//
// One tenant folder, `cost` (Host cost.localhost), owned by NAME, holds N app
// folders a00000, a00001, ... each with its own `.htaccess` (LodgeApp, LodgeProcesses
// 1, LodgeIdle 1) and a hello app: N apps of one Unix user, so that the step makes
// no user per app (useradd and userdel of a thousand users would take longer than
// the measure, and contend with whatever else edits /etc/passwd). lodged keeps one
// record per app (status/app-book.ts) and little per uid.
//
// RSS holds whatever V8's heap grew to while the apps started, garbage included, so
// the step also takes lodged's live heap, at N idle apps and after a fifth more:
// lodged is started with NODE_OPTIONS --heapsnapshot-signal, and SIGUSR2 makes it
// write a heap snapshot (after a full GC) into DIR/heap; the sum of its objects'
// sizes is what lodged really keeps.
//
// Traffic goes to 127.0.0.1 only; every phase is bounded in time; the sandbox it
// starts is stopped at the end, on SIGINT/SIGTERM, and on any failure. The pids of
// the sandbox's Apache and lodged are written to DIR/pids for run.sh to check.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { inSandbox, processesOf, sayer, sleep, stepArgs } = require('./sandbox-step');

const HOST = 'cost.localhost';
const CONCURRENCY = 4;
const APP = 'def application(environ, start_response):\n    start_response("200 OK", [("Content-Type", "text/plain")])\n    return [b"ok"]\n';
const HTACCESS = 'LodgeApp wsgi app.py\nLodgeProcesses 1\nLodgeIdle 1\n';
// Bounds: all the requests, the reaping after each batch, the settling, one heap
// snapshot (run.sh bounds the whole step).
const REQUESTS_MS = 300_000;
const REAP_MS = 60_000;
// After the last worker is reaped: its pool is forgotten on the registry's next pass
// (once a second), and lodged's collection after a wave of reaping comes on a later
// pass, at most 10 s after the one before it (pool/registry.ts, heap-trim.ts).
const SETTLE_MS = 12_000;
const HEAP_MS = 60_000;

const say = sayer('status cost');

/**
 * Rss and Pss (KiB) of one process, from /proc/PID/smaps_rollup, and Pss split: its
 * anonymous part (lodged's own: heaps, stacks) and its file part (node's code, which
 * other node processes on the machine share, so that it moves with them), and the
 * malloc heap's Rss (the `[heap]` mapping of /proc/PID/smaps). A lodged that is the
 * host's only node process has a Pss of about its Rss.
 */
function memory(pid) {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const maps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const brk = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(maps);
  return { rssKiB: kib('Rss'), pssKiB: kib('Pss'), pssAnonKiB: kib('Pss_Anon'), pssFileKiB: kib('Pss_File'), anonKiB: kib('Anonymous'), mallocHeapKiB: brk ? Number(brk[1]) : 0 };
}

/**
 * lodged's own view of its memory (status-probe.js, loaded into it): SIGWINCH makes
 * it write one JSON file into dir; KiB of the V8 heap in use and as mapped, by space,
 * and of ArrayBuffers' bytes outside it.
 */
async function probe(pid, dir) {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGWINCH');
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    await sleep(100);
    const file = fs.readdirSync(dir).find((f) => !before.has(f) && /^probe-.*\.json$/.test(f));
    if (!file) continue;
    const p = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    fs.rmSync(path.join(dir, file));
    const k = (b) => Math.round(b / 1024);
    return {
      heapUsedKiB: k(p.memoryUsage.heapUsed), heapPhysicalKiB: k(p.heap.totalPhysical), arrayBuffersKiB: k(p.memoryUsage.arrayBuffers),
      externalKiB: k(p.memoryUsage.external), spacesKiB: Object.fromEntries(Object.entries(p.spaces).map(([n, s]) => [n, k(s.physical)])),
      modules: p.modules, resources: p.resources,
    };
  }
  throw new Error(`lodged ${pid} wrote no probe file in 10 s (is bench/lib/status-probe.js loaded?)`);
}

/**
 * Live heap in pid: SIGUSR2 makes it write a heap snapshot into dir (see above); the
 * sum of the self sizes of its nodes, in KiB, and the bytes by kind of node (an
 * object's constructor, a closure's function, else the node type). The snapshot is
 * deleted after.
 */
async function liveHeap(pid, dir) {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const until = Date.now() + HEAP_MS;
  while (Date.now() < until) {
    await sleep(250);
    const file = fs.readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    let snap;
    try {
      snap = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    } catch {
      continue; // still being written
    }
    fs.rmSync(path.join(dir, file));
    const fields = snap.snapshot.meta.node_fields;
    const types = snap.snapshot.meta.node_types[fields.indexOf('type')];
    const [size, type, name] = ['self_size', 'type', 'name'].map((f) => fields.indexOf(f));
    const byKind = {};
    let bytes = 0;
    for (let i = 0; i < snap.nodes.length; i += fields.length) {
      const t = types[snap.nodes[i + type]];
      const kind = t === 'object' || t === 'closure' ? snap.strings[snap.nodes[i + name]] : `(${t})`;
      byKind[kind] = (byKind[kind] ?? 0) + snap.nodes[i + size];
      bytes += snap.nodes[i + size];
    }
    return { kib: Math.round(bytes / 1024), byKind };
  }
  throw new Error(`lodged ${pid} wrote no heap snapshot in ${HEAP_MS / 1000} s`);
}

/**
 * How heap b differs from heap a by kind, in bytes per app: the sums of the kinds
 * that grew and of those that shrank (V8 drops compiled code it no longer runs, so
 * the net change alone understates what the new apps hold), and the largest of each.
 */
function growth(a, b, apps, most = 8) {
  const kinds = new Set([...Object.keys(a.byKind), ...Object.keys(b.byKind)]);
  const delta = [...kinds].map((kind) => ({ kind, bytes: Math.round(((b.byKind[kind] ?? 0) - (a.byKind[kind] ?? 0)) / apps) }));
  const sum = (list) => list.reduce((n, d) => n + d.bytes, 0);
  const grew = delta.filter((d) => d.bytes > 0).sort((x, y) => y.bytes - x.bytes);
  const shrank = delta.filter((d) => d.bytes < 0).sort((x, y) => x.bytes - y.bytes);
  return { grewBytes: sum(grew), shrankBytes: sum(shrank), grew: grew.slice(0, most), shrank: shrank.slice(0, most / 2) };
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
}

function get(agent, port, host, p, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: { Host: host }, agent, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('error', (err) => resolve({ status: 0, body: Buffer.from(err.message) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ status: 0, body: Buffer.from(err.message) }));
  });
}

/** The tenant folder of n apps, owned by user. */
function makeApps(root, n, user) {
  const tenant = path.join(root, 'cost');
  fs.mkdirSync(tenant, { recursive: true });
  for (let i = 0; i < n; i++) {
    const dir = path.join(tenant, appName(i));
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, '.htaccess'), HTACCESS);
    fs.writeFileSync(path.join(dir, 'app.py'), APP);
  }
  execFileSync('chown', ['-R', `${user}:${user}`, tenant]);
  execFileSync('chmod', ['-R', 'u=rwX,go=rX', tenant]);
  fs.chmodSync(root, 0o755);
}

const appName = (i) => `a${String(i).padStart(5, '0')}`;

/** Asks apps [from, to) once each, CONCURRENCY at a time; the failures, by app. */
async function askEach(agent, port, from, to, deadline) {
  const failed = [];
  let next = from;
  const one = async () => {
    while (next < to && Date.now() < deadline) {
      const i = next++;
      const r = await get(agent, port, HOST, `/${appName(i)}/`);
      if (r.status !== 200 || r.body.toString() !== 'ok') failed.push(`${appName(i)}: ${r.status} ${r.body.toString().slice(0, 120)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, one));
  if (next < to) failed.push(`${to - next} apps not asked: the ${REQUESTS_MS / 1000} s bound was reached`);
  return failed;
}

/** Waits until uid runs no process (every worker reaped), then SETTLE_MS more. */
async function reaped(uid) {
  const until = Date.now() + REAP_MS;
  while (processesOf(uid).length > 0) {
    if (Date.now() > until) throw new Error(`${processesOf(uid).length} workers of uid ${uid} still run ${REAP_MS / 1000} s after the last request`);
    await sleep(200);
  }
  await sleep(SETTLE_MS);
}

async function statusJson(agent, port) {
  const r = await get(agent, port, 'localhost', '/lodge-status/?json');
  if (r.status !== 200) throw new Error(`the status location answered ${r.status}: ${r.body.toString().slice(0, 200)}`);
  const snap = JSON.parse(r.body.toString());
  const states = {};
  let apps = 0;
  let workers = 0;
  for (const t of snap.tenants) {
    for (const a of t.apps) {
      if (!a.root.includes('/cost/')) continue;
      apps++;
      workers += a.workers.length;
      states[a.state] = (states[a.state] ?? 0) + 1;
    }
  }
  return { bytes: r.body.length, apps, workers, states };
}

async function measure(o, sb, agent) {
  const lodged = sb.lodged.pid;
  const uid = Number(execFileSync('id', ['-u', o.user], { encoding: 'utf8' }).trim());
  const deadline = Date.now() + REQUESTS_MS;
  const failed = [];
  // Asks apps [from, to), waits until every worker is reaped; the CPU lodged spent.
  const round = async (from, to) => {
    const cpu0 = cpuSeconds(lodged);
    failed.push(...(await askEach(agent, o.port, from, to, deadline)));
    const cpuMs = (cpuSeconds(lodged) - cpu0) * 1000;
    await reaped(uid);
    return cpuMs;
  };
  const points = [];
  const point = async (name, apps, extra = {}) => {
    const m = { name, apps, ...memory(lodged), ...extra, probe: await probe(lodged, o.heapDir) };
    points.push(m);
    say(`${name}: lodged RSS ${m.rssKiB} KiB, PSS ${m.pssKiB} KiB (anon ${m.pssAnonKiB}, file ${m.pssFileKiB}; malloc heap ${m.mallocHeapKiB}); ` +
      `V8 heap ${m.probe.heapUsedKiB} KiB used of ${m.probe.heapPhysicalKiB} mapped ${JSON.stringify(m.probe.spacesKiB)}, ArrayBuffers ${m.probe.arrayBuffersKiB} KiB`);
  };
  await sleep(SETTLE_MS);
  await point('start', 0);
  // A first tenth: what lodged loads once, for its first requests, is counted apart
  // from what each app adds.
  const warm = Math.max(1, Math.round(o.apps / 10));
  await round(0, warm);
  await point('warm', warm);
  const t0 = Date.now();
  const cpuMs = await round(warm, o.apps);
  await point('idle', o.apps, { askMs: Date.now() - t0, lodgedCpuMsPerColdRequest: o.apps > warm ? cpuMs / (o.apps - warm) : null });
  const json = await statusJson(agent, o.port);
  say(`the status JSON of ${json.apps} apps: ${json.bytes} bytes, ${json.workers} workers, states ${JSON.stringify(json.states)}`);
  // The live heap last: writing a snapshot leaves lodged's RSS larger for good, so
  // it comes after the RSS points, and its own slope needs apps of its own.
  // An app's latency window (~1.2 KiB) is given back only by a status read that finds
  // its minute stale (status/latency.ts). No read comes between the two heap points,
  // so each of the new apps holds its window at the second: the figure per app
  // includes it, as in a lodged whose status nobody reads.
  const h0 = await liveHeap(lodged, o.heapDir);
  await round(o.apps, o.apps + o.heapApps);
  const h1 = await liveHeap(lodged, o.heapDir);
  const heap = [{ apps: o.apps, kib: h0.kib }, { apps: o.apps + o.heapApps, kib: h1.kib, growth: growth(h0, h1, o.heapApps) }];
  say(`live heap: ${h0.kib} KiB with ${o.apps} idle apps, ${h1.kib} KiB with ${o.apps + o.heapApps}`);
  return { apps: o.apps, warm, heapApps: o.heapApps, concurrency: CONCURRENCY, failed: failed.slice(0, 20), failures: failed.length, points, heap, json };
}

async function main() {
  const o = stepArgs('status-cost', process.argv.slice(2), 'apps');
  if (!Number.isInteger(o.apps) || o.apps < 1 || o.apps > 5000) throw new Error(`status-cost: --apps must be a whole number from 1 to 5000, got ${o.apps}`);
  // The live heap's slope is taken over a fifth more apps (see measure()).
  o.heapApps = Math.max(1, Math.round(o.apps / 5));
  const root = path.join(o.work, 'root');
  makeApps(root, o.apps + o.heapApps, o.user);
  say(`${o.apps} + ${o.heapApps} apps in ${root}/cost; starting the sandbox on 127.0.0.1:${o.port}`);
  // The sandbox's run directory (config, logs) goes in ours; Apache passes its
  // environment on to the lodged it starts.
  process.env.TMPDIR = o.work;
  o.heapDir = path.join(o.work, 'heap');
  fs.mkdirSync(o.heapDir);
  fs.chmodSync(o.heapDir, 0o700);
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${o.heapDir} --require ${path.join(__dirname, 'status-probe.js')}`.trim();
  // A connection per request: Apache closes a kept-alive one after 5 s idle (the
  // waits for reaping are longer), and a request sent on it as it closes would
  // fail for a reason that is no part of what is measured.
  const agent = new http.Agent({ keepAlive: false, maxSockets: CONCURRENCY });
  const sandbox = { root, port: o.port, hostDirectives: ['<Location /lodge-status>', '  SetHandler lodge-status', '</Location>'] };
  try {
    await inSandbox({ work: o.work, out: o.out, prefix: 'statuscost', sandbox, logs: ['error.log', 'lodged.log', 'httpd.conf'], say }, (sb) => measure(o, sb, agent));
  } finally {
    agent.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`status cost: ${err.stack ?? err}\n`);
  process.exit(1);
});
