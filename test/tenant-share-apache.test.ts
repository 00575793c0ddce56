import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApacheVersion } from '../sidecar/src/sandbox/sandbox';
import { Reply } from './helpers/http';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { processesOf } from './helpers/users';
import { LOOP_MAX_MS } from './helpers/load';

// One tenant with three app folders and requests that wait, against a host whose share
// for one tenant is 8 requests and 3 workers, behind an Apache (2.4, 1.3) with only 10 workers:
// the tenant's excess is refused at once, its workers stay within 3 over its three
// apps, and a neighbour under steady load gets every request answered. Latencies are
// printed (test diagnostics), never asserted:
//
//   node --test --test-reporter=spec dist/test/tenant-share-apache.test.js

const SHARE_REQUESTS = 8;
const SHARE_WORKERS = 3;
const APACHE_WORKERS = 10;

// /hold/<token>: marks itself held, then waits for the file release-<token> in the
// tenant's folder (one above the app's).
const HOLD_APP = `
import os, time, uuid
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
def application(environ, start_response):
    p = environ["PATH_INFO"]
    if p.startswith("/hold/"):
        token = p[len("/hold/"):]
        open(os.path.join(TOP, "holding-%s-%s" % (token, uuid.uuid4().hex)), "w").close()
        for _ in range(1200):
            if os.path.exists(os.path.join(TOP, "release-" + token)):
                break
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [p.encode()]
`;
const HELLO = `
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"calm"]
`;
const APPS = ['a', 'b', 'c'];

function greedyFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const app of APPS) {
    files[`${app}/.htaccess`] = 'LodgeApp wsgi app.py\nLodgeProcesses 4\n';
    files[`${app}/app.py`] = HOLD_APP;
  }
  return files;
}

// A small Apache, so that a tenant holding all of it would show at once.
const SMALL_APACHE: Record<ApacheVersion, string[]> = {
  '2.4': ['ThreadsPerChild 5', `MaxRequestWorkers ${APACHE_WORKERS}`, 'MinSpareThreads 5', 'MaxSpareThreads 10', 'ListenBacklog 511'],
  '1.3': [`MaxClients ${APACHE_WORKERS}`, 'MinSpareServers 2', 'MaxSpareServers 10', 'ListenBacklog 511'],
};

function p50(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)].toFixed(2) : 'n/a';
}

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      { greedy: greedyFiles(), calm: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': HELLO } },
      // lodged's path, where the share admits request by request (exactly 8 of a flood);
      // on the app's own socket it holds within a tick (test/tenant-share-direct.test.ts).
      { direct: false, limits: { tenantRequests: SHARE_REQUESTS, tenantProcesses: SHARE_WORKERS } },
      apache,
      { hostDirectives: SMALL_APACHE[apache] },
    );
  });
  after(async () => {
    if (site) for (const f of fs.readdirSync(path.join(site.root, 'greedy'))) if (f.startsWith('holding-')) fs.writeFileSync(path.join(site.root, 'greedy', f.replace(/^holding-([^-]+)-.*/, 'release-$1')), '');
    await site?.stop();
  });

  const greedyDir = () => path.join(site.root, 'greedy');
  const holding = (token: string) => fs.readdirSync(greedyDir()).filter((f) => f.startsWith(`holding-${token}-`)).length;
  const release = (token: string) => fs.writeFileSync(path.join(greedyDir(), `release-${token}`), '');
  const greedyLogs = () => APPS.map((a) => site.tenantLog('greedy', a)).join('');

  /** A neighbour's steady client: one request after another until stopped, or LOOP_MAX_MS (a test that failed never stops it). */
  function steadyNeighbour() {
    const replies: Array<{ status: number; ms: number }> = [];
    let running = true;
    const until = Date.now() + LOOP_MAX_MS;
    const done = (async () => {
      while (running && Date.now() < until) {
        const t0 = process.hrtime.bigint();
        const r = await site.get('calm', '/', { timeoutMs: 20_000 }).catch((err: Error) => ({ status: 0, text: err.message }) as Reply);
        replies.push({ status: r.status, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      }
    })();
    return {
      replies,
      async stop() {
        running = false;
        await done;
        return replies;
      },
    };
  }

  test('past its share a tenant gets 503 with Retry-After at once, the reason in its log; the neighbour gets every request', async (t) => {
    // Before: the neighbour alone.
    const before = steadyNeighbour();
    await eventually(() => before.replies.length >= 50, 'the neighbour answers alone');
    const alone = await before.stop();
    assert.ok(alone.every((r) => r.status === 200));

    const neighbour = steadyNeighbour();
    const flood = 8 * APPS.length;
    const settled: Reply[] = [];
    const all = Array.from({ length: flood }, (_, i) =>
      site.get('greedy', `/${APPS[i % APPS.length]}/hold/flood`, { timeoutMs: 60_000 }).then((r) => {
        settled.push(r);
        return r;
      }),
    );
    // Refused while the admitted ones still wait for their release: not after a queue timeout.
    await eventually(() => settled.length >= flood - SHARE_REQUESTS, `${flood - SHARE_REQUESTS} of ${flood} requests refused while ${SHARE_REQUESTS} are held`).catch(async (err) => {
      release('flood');
      await Promise.all([...all, neighbour.stop()]);
      throw err;
    });
    const during = neighbour.replies.length;
    await eventually(() => neighbour.replies.length >= during + 20, 'the neighbour keeps answering while the tenant is refused');
    assert.ok(holding('flood') <= SHARE_WORKERS, `at most ${SHARE_WORKERS} requests run: ${holding('flood')}`);
    for (const r of settled) {
      assert.equal(r.status, 503, `refused: ${r.status} ${r.text}`);
      assert.match(String(r.headers['retry-after']), /^\d+$/);
    }
    assert.ok(greedyLogs().includes(`refused with 503: your apps already hold ${SHARE_REQUESTS} requests (running or waiting), this host's share for one account (tenant-requests ${SHARE_REQUESTS})`), greedyLogs());
    const lines = greedyLogs().split('\n').filter((l) => l.includes('refused with 503')).length;
    assert.ok(lines <= 2 * APPS.length, `a flood writes a line a second per app, not one per request: ${lines}`);

    const got = neighbour.replies.slice(); // from the flood's start to its release
    release('flood');
    const replies = await Promise.all(all);
    const seen = await neighbour.stop();
    const statuses = replies.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(SHARE_REQUESTS).fill(200), ...Array(flood - SHARE_REQUESTS).fill(503)]);
    assert.deepEqual(seen.filter((r) => r.status !== 200), [], 'the neighbour gets 200 for every request');
    // A tenant's flood must not write a line per refused request into the host's error log.
    const hostLines = site.errorLog().split('\n').filter((l) => l.includes('its share')).length;
    assert.ok(hostLines <= 2 * APPS.length, `Apache's error log: ${hostLines} lines for ${flood - SHARE_REQUESTS} refused requests`);
    t.diagnostic(`neighbour p50: ${p50(alone.map((r) => r.ms))} ms alone (${alone.length} requests), ${p50(got.map((r) => r.ms))} ms during the flood (${got.length} requests)`);
  });

  test("a tenant's workers stay within its share over all its apps, and every app's requests are served", async () => {
    const perApp = 2;
    let most = 0;
    let all: Array<Promise<Reply>> = [];
    const sample = setInterval(() => {
      most = Math.max(most, processesOf(site.users.greedy.uid).length);
    }, 20);
    try {
      all = Array.from({ length: perApp * APPS.length }, (_, i) => site.get('greedy', `/${APPS[i % APPS.length]}/hold/spread`, { timeoutMs: 60_000 }));
      await eventually(() => holding('spread') >= SHARE_WORKERS, `${SHARE_WORKERS} requests run`);
      // Give any worker beyond the share the time to show up (old code: one per request).
      await eventually(() => processesOf(site.users.greedy.uid).length >= SHARE_WORKERS, 'the workers are up');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(holding('spread'), SHARE_WORKERS, 'the other requests wait for a worker');
      release('spread');
      const replies = await Promise.all(all);
      assert.deepEqual(replies.map((r) => r.status), Array(perApp * APPS.length).fill(200), 'apps that had no worker got one from their siblings');
      assert.deepEqual(replies.map((r) => r.text).sort(), APPS.flatMap(() => Array(perApp).fill('/hold/spread')));
    } finally {
      clearInterval(sample);
      release('spread');
      await Promise.allSettled(all);
    }
    assert.ok(most <= SHARE_WORKERS, `the tenant's processes over its three apps: at most ${most}, share ${SHARE_WORKERS}`);
  });

  test("one busy app of a tenant does not keep its sibling waiting for a worker until the queue timeout", async () => {
    // a holds all 3 workers and has 4 more requests waiting; b waits for a worker too.
    const running = Array.from({ length: SHARE_WORKERS }, () => site.get('greedy', '/a/hold/fair1', { timeoutMs: 60_000 }));
    await eventually(() => holding('fair1') === SHARE_WORKERS, 'a holds every worker of the tenant');
    const queued = Array.from({ length: SHARE_REQUESTS - SHARE_WORKERS - 1 }, () => site.get('greedy', '/a/hold/fair2', { timeoutMs: 60_000 }));
    release('fairb');
    let bDone: Reply | undefined;
    const b = site.get('greedy', '/b/hold/fairb', { timeoutMs: 60_000 }).then((r) => (bDone = r));
    try {
      await new Promise((r) => setTimeout(r, 300)); // b's request is in its queue
      release('fair1');
      // a's first worker to finish leaves for b (a keeps its fair part, 1 of 3, and more
      // while b has one); b is served while a's own queue still runs.
      await eventually(() => bDone !== undefined, "b's request is served while a's requests still hold their workers");
      assert.equal(bDone!.status, 200);
      assert.ok(holding('fair2') >= 1, 'a still serves its own queue');
    } finally {
      release('fair1');
      release('fair2');
    }
    const rest = await Promise.all([...running, ...queued, b]);
    assert.deepEqual(rest.map((r) => r.status), Array(rest.length).fill(200));
  });
});
