import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CONTROL_PER_UID } from '../sidecar/src/server/control';
import { controlPath } from '../sidecar/src/status/control-protocol';
import { StatusSnapshot, statusSnapshot } from '../sidecar/src/status/schema';
import { Site, eventually, startSite } from './helpers/site';
import { promtoolCheck } from './helpers/promtool';

// Two tenants on a real Apache 2.4 and a real lodged: A's requests and a LodgeTimeout
// kill; B's requests, then a full queue. `lodge status` as root shows both with the
// right counters and why A's worker was killed; as A's own uid it shows A alone; the
// JSON validates and the Prometheus text passes promtool. The control socket answers
// while B's every worker is busy and its queue full, and hostile clients get an error
// each.

const A_APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
def application(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/sleep":
        time.sleep(100000)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [p.encode()]
`;

// /hold keeps B's only worker until the test writes 'release' (30 s at most).
const B_APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
def hold():
    open(os.path.join(HERE, "holding"), "w").close()
    until = time.time() + 30
    while time.time() < until and not os.path.exists(os.path.join(HERE, "release")):
        time.sleep(0.05)
def application(environ, start_response):
    if environ["PATH_INFO"] == "/hold":
        hold()
    if environ["PATH_INFO"] == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"b"]
`;

const CLI = path.join(__dirname, '..', 'sidecar', 'src', 'cli', 'main.js');

let site: Site;
before(async () => {
  site = await startSite(
    {
      a: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 1\nLodgeProcesses 1\n', 'app.py': A_APP },
      b: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': B_APP },
    },
    { maxQueue: 1 },
  );
});
after(async () => site?.stop());

/** `lodge status ARGS` as root, or as a tenant's uid. */
function lodgeStatus(args: string[], as?: { uid: number; gid: number }): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'status', '--socket', site.sb.socket, ...args], { encoding: 'utf8', uid: as?.uid, gid: as?.gid, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function statusJson(as?: { uid: number; gid: number }): StatusSnapshot {
  const r = lodgeStatus(['--json'], as);
  assert.equal(r.code, 0, r.err);
  return statusSnapshot.parse(JSON.parse(r.out));
}

function appOf(snap: StatusSnapshot, uid: number) {
  const t = snap.tenants.find((x) => x.uid === uid);
  assert.ok(t, `tenant ${uid} in the status`);
  assert.equal(t.apps.length, 1);
  return { tenant: t, app: t.apps[0] };
}

/** A raw control-socket client: what it sends, the answer and whether lodged closed. */
function rawControl(send: (c: net.Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(controlPath(site.sb.socket));
    let got = '';
    c.on('connect', () => send(c));
    c.on('data', (d) => (got += d.toString('utf8')));
    c.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    c.on('close', () => resolve(got));
  });
}

test('lodge status as root shows both tenants with their counters and why a worker was killed', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await site.get('a', '/')).status, 200);
  assert.equal((await site.get('b', '/')).status, 200);
  assert.equal((await site.get('b', '/')).status, 200);
  assert.equal((await site.get('b', '/missing')).status, 404);
  // A request with a body borrows the worker: mod_lodge carries the response and says its status in RELEASE.
  assert.equal((await site.get('b', '/', { body: 'x=1' })).status, 200);
  assert.equal((await site.get('a', '/sleep')).status, 504);
  const { a: ua, b: ub } = site.users;
  await eventually(() => appOf(statusJson(), ua.uid).app.kills.timeout === 1, "A's killed worker is counted");
  const snap = statusJson();
  const a = appOf(snap, ua.uid);
  const b = appOf(snap, ub.uid);
  assert.equal(a.tenant.name, ua.name);
  assert.equal(b.tenant.name, ub.name);
  assert.equal(a.app.root, path.join(site.root, 'a'));
  assert.deepEqual([a.app.requests.total, a.app.requests['2xx'], a.app.requests['5xx']], [4, 3, 1]);
  assert.deepEqual([b.app.requests.total, b.app.requests['2xx'], b.app.requests['4xx'], b.app.requests['5xx'], b.app.requests.unseen ?? 0], [4, 3, 1, 0, 0]);
  assert.equal(a.app.kills.timeout, 1);
  assert.equal(b.app.kills.timeout, 0);
  assert.equal(a.app.restarts, 1);
  assert.equal(a.app.limits.timeout, 1);
  assert.ok(a.app.latency.count === 4 && a.app.latency.p95 >= 0.9, `the timed-out request is in A's p95: ${JSON.stringify(a.app.latency)}`);
  const kill = snap.events.find((e) => e.kind === 'kill' && e.app === a.app.root);
  assert.ok(kill, `a kill event for A: ${JSON.stringify(snap.events)}`);
  assert.match(kill.message, /^timeout: GET \/sleep: took longer than LodgeTimeout 1 s/);
  assert.equal(kill.uid, ua.uid);
  assert.equal(snap.lodged.pid > 0 && snap.lodged.version, JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
  const table = lodgeStatus([]);
  assert.equal(table.code, 0, table.err);
  assert.ok(table.out.includes(ua.name) && table.out.includes(ub.name), table.out);
  assert.match(table.out, /timeout:1/);
});

test("lodge status as a tenant's own uid shows only that tenant's apps and events", () => {
  const { a: ua, b: ub } = site.users;
  const mine = statusJson(ua);
  assert.deepEqual(mine.tenants.map((t) => t.uid), [ua.uid]);
  assert.ok(mine.events.length > 0 && mine.events.every((e) => e.uid === ua.uid && e.app === path.join(site.root, 'a')), JSON.stringify(mine.events));
  assert.ok(!JSON.stringify(mine).includes(path.join(site.root, 'b')), "nothing of B's path");
  assert.equal(mine.lodged.rss, undefined);
  const theirs = statusJson(ub);
  assert.deepEqual(theirs.tenants.map((t) => t.uid), [ub.uid]);
  assert.ok(theirs.events.every((e) => e.uid === ub.uid));
});

test('the Prometheus text of a real lodged with real tenants passes promtool', () => {
  const r = lodgeStatus(['--metrics']);
  assert.equal(r.code, 0, r.err);
  assert.equal(promtoolCheck(r.out), '');
  const app = path.join(site.root, 'a');
  assert.ok(r.out.includes(`lodge_requests_total{tenant="${site.users.a.name}",app="${app}",code="5xx"} 1`), r.out);
  assert.ok(r.out.includes(`lodge_watchdog_kills_total{tenant="${site.users.a.name}",app="${app}",reason="timeout"} 1`), r.out);
  assert.match(r.out, /^lodge_up 1$/m);
});

test('the control socket answers while every worker of an app is busy and its queue full', async () => {
  const dir = path.join(site.root, 'b');
  const uid = site.users.b.uid;
  const held = site.get('b', '/hold');
  await eventually(() => fs.existsSync(path.join(dir, 'holding')), "B's only worker is held");
  const queued = site.get('b', '/queued');
  await eventually(() => appOf(statusJson(), uid).app.queue.now === 1, 'one request waits');
  const turned = await site.get('b', '/over');
  assert.equal(turned.status, 503, 'the queue is full');
  const { app } = appOf(statusJson(), uid);
  assert.equal(app.state, 'running');
  assert.deepEqual(app.workers.map((w) => [w.state, w.current?.method, w.current?.path]), [['busy', 'GET', '/hold']]);
  assert.ok(app.workers[0].rss! > 0 && app.workers[0].pss! > 0, 'RSS and PSS of the worker, read as root');
  assert.equal(app.queue.now, 1);
  assert.ok(app.queue.peak >= 1 && app.capReached >= 2 && (app.turnedAway ?? 0) >= 1, JSON.stringify(app));
  fs.writeFileSync(path.join(dir, 'release'), '');
  assert.equal((await held).status, 200);
  assert.equal((await queued).status, 200);
});

test('lodge status --watch --json writes a fresh snapshot each second until stopped', async () => {
  const child = spawn(process.execPath, [CLI, 'status', '--watch', '--json', '--socket', site.sb.socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
      if (lines.length >= 2) resolve();
    });
    child.on('exit', (code) => reject(new Error(`lodge status --watch exited (${code})`)));
  });
  child.kill();
  const [first, second] = lines.map((l) => statusSnapshot.parse(JSON.parse(l)));
  assert.ok(second.at > first.at, 'a new snapshot, not the same one again');
  assert.equal(second.tenants.length, 2);
});

test('a hostile control client gets an error and costs nothing else', async () => {
  // A line far over the limit, never ended.
  const huge = await rawControl((c) => c.write(Buffer.alloc(1 << 20, 0x61)));
  assert.match(huge, /^\{"ok":false,"error":"a request line is at most \d+ bytes"\}\n$/);
  const garbage = await rawControl((c) => c.write('\x00\xff{{{ not json\n'));
  assert.match(garbage, /"ok":false,"error":"the request is not JSON/);
  const wrong = await rawControl((c) => c.write('{"op":"status","uid":0}\n'));
  assert.match(wrong, /"ok":false,"error":"not a request/);
  // Slow clients: silent connections, root's and a tenant's, held open.
  const silent = Array.from({ length: 8 }, () => rawControl(() => {}));
  const crowd = spawnSync(process.execPath, ['-e', `
    const net = require('net');
    const socks = [];
    for (let i = 0; i < ${CONTROL_PER_UID}; i++) socks.push(net.connect(${JSON.stringify(controlPath(site.sb.socket))}));
    setTimeout(() => {
      const c = net.connect(${JSON.stringify(controlPath(site.sb.socket))});
      let got = '';
      c.on('connect', () => c.write('{"op":"status"}\\n'));
      c.on('data', (d) => (got += d));
      c.on('close', () => { process.stdout.write(got); process.exit(0); });
    }, 500);
  `], { encoding: 'utf8', uid: site.users.a.uid, gid: site.users.a.gid, timeout: 20_000 });
  assert.match(crowd.stdout, /"ok":false,"error":"too many status connections open/, crowd.stderr);
  // Meanwhile root's status and both tenants' requests are served.
  const snap = statusJson();
  assert.equal(snap.tenants.length, 2);
  assert.equal((await site.get('b', '/')).status, 200);
  assert.equal((await site.get('a', '/')).status, 200);
  // Each silent client is told, then closed.
  for (const got of await Promise.all(silent)) assert.match(got, /"ok":false,"error":"no request line within \d+ s"/);
  assert.match(site.lodgedLog(), /listening on/);
});
