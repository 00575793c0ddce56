import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { processesOf } from './helpers/users';

// Tenant A misbehaves in every way the design names, one request at a time, while a
// steady client loads tenant B for the whole run. Each case: A's request gets its
// documented status, A's next request works, nothing of A outlives its worker, and B
// sees no failed request. Timings are measured and printed (test diagnostics), never
// asserted:
//
//   node --test --test-reporter=spec dist/test/watchdogs.test.js

const LIMITS = 'LodgeTimeout 3\nLodgeMemory 64M\nLodgeCPU 1\nLodgeProcesses 1\n';
const TASKS = 64;

const A_APP = `
import ctypes, os, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(HERE, "exit-at-import")):
    os._exit(1)
KEEP = []

def fork_bomb():
    told = False
    while True:
        try:
            os.fork()
        except OSError as e:
            if not told:
                print("fork failed: %s" % e, flush=True)
                told = True

def setsid_child():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(100000)
        os._exit(0)
    os.waitpid(pid, 0)

def application(environ, start_response):
    p = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain")]
    if p == "/loop":
        while True:
            pass
    elif p == "/sleep":
        time.sleep(100000)
    elif p == "/memory-bomb":
        hog = []
        while True:
            hog.append(b"\\1" * (8 << 20))
    elif p == "/grow":
        KEEP.append(b"\\1" * (80 << 20))
        time.sleep(1.2)
    elif p == "/fork-bomb":
        fork_bomb()
    elif p == "/segfault":
        ctypes.string_at(0)
    elif p == "/exit":
        os._exit(3)
    elif p == "/setsid":
        setsid_child()
    elif p == "/stdout":
        line = "x" * (1 << 20) + "\\n"
        for _ in range(100):
            sys.stdout.write(line)
    elif p == "/bad-status":
        start_response("two hundred", headers)
        return [b""]
    elif p == "/bad-header":
        start_response("200 OK", [("X-Split", "a\\nb")])
        return [b""]
    start_response("200 OK", headers)
    return [str(os.getpid()).encode()]
`;

const B_APP = `
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"B"]
`;

/** B's steady client: two keep-alive connections, a request every few ms on each. */
class Load {
  readonly samples: Array<{ at: number; ms: number; status: number }> = [];
  private running = true;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  private readonly loops: Promise<void>[];

  constructor(private readonly port: number) {
    this.loops = [this.loop(), this.loop()];
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const at = Date.now();
      const t = process.hrtime.bigint();
      const status = await this.one();
      this.samples.push({ at, ms: Number(process.hrtime.bigint() - t) / 1e6, status });
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private one(): Promise<number> {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path: '/', headers: { Host: `b.localhost:${this.port}` }, agent: this.agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      });
      req.setTimeout(10_000, () => req.destroy());
      req.on('error', () => resolve(0));
    });
  }

  since(from: number): { count: number; failed: number; p99: number } {
    const w = this.samples.filter((s) => s.at >= from);
    const ms = w.map((s) => s.ms).sort((a, b) => a - b);
    return { count: w.length, failed: w.filter((s) => s.status !== 200).length, p99: ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))] ?? 0 };
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
  }
}

let site: Site;
let load: Load;
let aUid: number;
let baselineP99 = 0;
const figures: string[] = [];

before(async () => {
  site = await startSite({
    a: { '.htaccess': `LodgeApp wsgi app.py\n${LIMITS}`, 'app.py': A_APP },
    b: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 2\n', 'app.py': B_APP },
  }, { limits: { tasks: TASKS } });
  aUid = site.users.a.uid;
  assert.equal((await site.get('a', '/')).status, 200);
  assert.equal((await site.get('b', '/')).status, 200);
  load = new Load(site.sb.port);
  await eventually(() => load.samples.length > 20, 'B is under load');
});

after(async () => {
  await load?.stop();
  await site?.stop();
});

/** Everything of tenant A is gone (its worker ended, and all it started with it). */
async function nothingOfA(what: string): Promise<void> {
  await eventually(() => processesOf(aUid).length === 0, `no process of A is left after ${what}`);
}

test('baseline: B alone answers every request', async (t) => {
  const from = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  const w = load.since(from);
  assert.equal(w.failed, 0);
  baselineP99 = w.p99;
  t.diagnostic(`B alone: ${w.count} requests in 2 s, p99 ${w.p99.toFixed(1)} ms`);
});

interface Attack {
  what: string;
  path: string;
  status: number;
  /** The attack ends A's worker by itself (else the test ends it with /exit). */
  killsWorker: boolean;
  check?: (ms: number) => void | Promise<void>;
}

const attacks: Attack[] = [
  {
    what: 'an infinite loop is stopped at LodgeCPU (504)', path: '/loop', status: 504, killsWorker: true,
    check: (ms) => {
      assert.match(site.tenantLog('a'), /GET \/loop: request used more than LodgeCPU 1 s/);
      figures.push(`infinite loop: 504 after ${ms} ms (LodgeCPU 1 s: ${ms - 1000} ms past the limit)`);
    },
  },
  {
    what: 'a long sleep is stopped at LodgeTimeout (504)', path: '/sleep', status: 504, killsWorker: true,
    check: (ms) => {
      assert.match(site.tenantLog('a'), /GET \/sleep: took longer than LodgeTimeout 3 s/);
      figures.push(`long sleep: 504 after ${ms} ms (LodgeTimeout 3 s: ${ms - 3000} ms past the limit)`);
    },
  },
  {
    what: 'a memory bomb is stopped at once (502)', path: '/memory-bomb', status: 502, killsWorker: true,
    check: () => {
      assert.match(site.tenantLog('a'), /GET \/memory-bomb: worker \d+ stopped for memory/);
      const peak = /stopped for memory: .*\(LodgeMemory 64 MiB, peak (\d+) MiB\)/.exec(site.lodgedLog());
      figures.push(`memory bomb: stopped; ${peak ? `peak ${peak[1]} MiB` : 'peak not logged'} against LodgeMemory 64 MiB (kernel limit 96 MiB)`);
    },
  },
  {
    what: 'a fork bomb meets the task limit and is stopped with its whole tree (504)', path: '/fork-bomb', status: 504, killsWorker: true,
    check: async () => {
      await eventually(() => /fork failed: .*Resource temporarily unavailable/.test(site.tenantLog('a')), 'forks failed inside the app');
      assert.match(site.lodgedLog(), new RegExp(`uid ${aUid} reached its task limit \\(${TASKS}`));
    },
  },
  {
    what: 'a segfault costs one request (502)', path: '/segfault', status: 502, killsWorker: true,
    check: () => assert.match(site.tenantLog('a'), /GET \/segfault: worker \d+ was killed by SIGSEGV/),
  },
  {
    what: 'os._exit during a request costs one request (502)', path: '/exit', status: 502, killsWorker: true,
    check: () => assert.match(site.tenantLog('a'), /GET \/exit: worker \d+ exited with status 3/),
  },
  { what: 'a child that calls setsid() and sleeps forever dies with its worker (200)', path: '/setsid', status: 200, killsWorker: false },
  { what: 'a bad status line is a 502', path: '/bad-status', status: 502, killsWorker: false },
  { what: 'a header with a newline is a 502', path: '/bad-header', status: 502, killsWorker: false },
  {
    what: '100 MB on stdout goes to the tenant log, not to the client (200)', path: '/stdout', status: 200, killsWorker: false,
    check: () => {
      const log = path.join(site.root, 'a', 'logs', 'lodge.log');
      assert.ok(fs.statSync(log).size >= 100 * (1 << 20), 'the output is in the tenant log');
      fs.truncateSync(log, 0);
    },
  },
];

for (const a of attacks) {
  test(`${a.what}; A's next request works, nothing of A outlives its worker, B fails nothing`, async (t) => {
    const from = Date.now();
    const r = await site.get('a', a.path);
    const ms = Date.now() - from;
    assert.equal(r.status, a.status, `${a.path}: ${r.text.slice(0, 200)}`);
    if (a.killsWorker) await nothingOfA(a.path);
    const next = await site.get('a', '/');
    assert.equal(next.status, 200, "A's next request");
    if (!a.killsWorker) {
      if (r.status === 200) assert.equal(r.text, next.text, 'the same worker served both');
      assert.equal((await site.get('a', '/exit')).status, 502);
      await nothingOfA(`${a.path} and the end of its worker`);
    }
    await a.check?.(ms);
    const w = load.since(from);
    assert.equal(w.failed, 0, `B failed ${w.failed} of ${w.count} requests`);
    t.diagnostic(`${a.path}: A answered ${r.status} after ${ms} ms; B p99 ${w.p99.toFixed(1)} ms over ${w.count} requests (alone: ${baselineP99.toFixed(1)} ms)`);
    figures.push(`${a.path}: B p99 ${w.p99.toFixed(1)} ms (alone ${baselineP99.toFixed(1)} ms)`);
  });
}

test('os._exit at import: 502 with the reason in the tenant log, and the fixed app serves again', async () => {
  const dir = path.join(site.root, 'a');
  const marker = path.join(dir, 'exit-at-import');
  fs.writeFileSync(marker, '');
  const from = Date.now();
  const r = await site.get('a', '/');
  assert.equal(r.status, 502);
  assert.match(site.tenantLog('a'), /the app stopped while loading, before it was ready: worker \d+ exited with status 1/);
  await nothingOfA('the failed start');
  // The tenant's fix: the marker goes, and the edit of app.py ends the back-off.
  fs.rmSync(marker);
  const now = new Date();
  fs.utimesSync(path.join(dir, 'app.py'), now, now);
  assert.equal((await site.get('a', '/')).status, 200);
  assert.equal(load.since(from).failed, 0);
});

test('over LodgeMemory (not far over): the request succeeds and its worker is replaced after it', async () => {
  const from = Date.now();
  const first = await site.get('a', '/grow');
  assert.equal(first.status, 200);
  const oldPid = Number(first.text);
  await eventually(() => !processesOf(aUid).includes(oldPid), 'the grown worker has left');
  const next = await site.get('a', '/');
  assert.equal(next.status, 200);
  assert.notEqual(Number(next.text), oldPid, 'a fresh worker serves the next request');
  assert.match(site.tenantLog('a'), new RegExp(`worker ${oldPid} recycled after its request: it used \\d+ MiB, over LodgeMemory 64 MiB`));
  const used = new RegExp(`worker ${oldPid} .*recycled after its request: it used (\\d+) MiB`).exec(site.lodgedLog());
  figures.push(`grown to 80 MiB: ${used ? `${used[1]} MiB used` : 'use not logged'} against LodgeMemory 64 MiB: recycled after the request`);
  assert.equal(load.since(from).failed, 0);
});

test('the watchdogs in force are named in lodged\'s log', (t) => {
  const line = /watchdogs: (.*)/.exec(site.lodgedLog());
  assert.ok(line, 'one line says which enforcement is in force');
  t.diagnostic(line[1]);
  for (const f of figures) t.diagnostic(f);
});
