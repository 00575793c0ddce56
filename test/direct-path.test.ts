import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { oneConnection } from './helpers/one-connection';
import { statusSnapshot } from '../sidecar/src/status/schema';

const CLI = path.join(__dirname, '..', 'sidecar', 'src', 'cli', 'main.js');

// lodged.json `direct: true`: once lodged has answered an app's request with ROUTE, the
// Apache process goes to the app's own socket for it, where the app's workers accept,
// and lodged is out of the byte path: the requests are served while lodged is stopped.

const APP = `
import os, signal, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/loop":
        while True:
            pass
    if environ["PATH_INFO"] == "/spin":
        t = time.time()
        while time.time() - t < 20:
            pass
    if environ["PATH_INFO"] == "/nap":
        time.sleep(0.8)
    if environ["PATH_INFO"] == "/long":
        time.sleep(1.5)  # under the suite's LodgeTimeout 2
    if environ["PATH_INFO"] == "/die":
        os.kill(os.getpid(), signal.SIGKILL)
    if environ["PATH_INFO"] == "/big":
        n = sum(len(v) for k, v in environ.items() if k.startswith("HTTP_X_BIG_"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%d %s" % (n, environ.get("HTTP_X_BIG_89", "")[:3])).encode()]
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %d %s" % (os.getpid(), len(body), os.environ.get("LODGE_MARK", "-"))).encode()]
`;

forEachApache((apache) => {
  let site: Site;
  const routeDir = () => path.join(path.dirname(site.sb.socket), 'apps');

  before(async () => {
    site = await startSite({ alpha: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 2\nLodgeTimeout 2\n', 'app.py': APP } }, { direct: true }, apache);
  });
  after(async () => {
    await site?.stop();
  });

  test('after the first request Apache goes to the app\'s own socket: served while lodged is stopped, bodies both ways', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      // The first starts the app (lodged carries it); the next finds a worker ready,
      // and lodged answers ROUTE.
      for (let i = 0; i < 2; i++) {
        const r = await c.send('/');
        assert.equal(r.status, 200, r.text);
      }
      const sockets = fs.readdirSync(routeDir()).filter((f) => f.endsWith('.sock'));
      assert.equal(sockets.length, 1, 'one socket for the app');
      const st = fs.statSync(path.join(routeDir(), sockets[0]));
      assert.equal(st.mode & 0o777, 0o600, 'connectable by the web server\'s user only');
      assert.notEqual(st.uid, site.users.alpha.uid, 'not the tenant\'s');
      const lodged = site.sb.lodged.pid!;
      process.kill(lodged, 'SIGSTOP');
      try {
        for (let i = 0; i < 20; i++) {
          const r = await c.send('/');
          assert.equal(r.status, 200, r.text);
          assert.match(r.text, /^\d+ 0 -$/);
        }
        const big = Buffer.alloc(3 << 20, 0x61);
        const up = await c.send('/up', big);
        assert.equal(up.status, 200, up.text);
        assert.match(up.text, new RegExp(`^\\d+ ${big.length} -$`), 'the whole body reached the app');
      } finally {
        process.kill(lodged, 'SIGCONT');
      }
    } finally {
      c.close();
    }
  });

  // Second, so that the tests after it use the Apache children's connections to lodged
  // that these requests went through: lodged paused one that held a REQ over 256 KiB and
  // its BODY_END, and left it paused when it answered ROUTE; the verdict of the next
  // test's stuck request was never read there (its worker ran on 12 s), and the requests
  // after it hung.
  test('headers that make a REQ larger than the worker\'s read-ahead (90 of 8,000 bytes) reach the app whole, read in pieces, request after request; lodged reads on after routing such a REQ', async () => {
    const headers: Record<string, string> = { Host: 'alpha.localhost' };
    for (let i = 0; i < 90; i++) headers[`X-Big-${i}`] = String.fromCharCode(65 + (i % 26)).repeat(8000);
    for (let k = 0; k < 3; k++) {
      const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: site.sb.port, path: '/big', headers, agent: false, timeout: 10_000 }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, '720000 LLL', 'every header, the last one too');
    }
    const c = oneConnection(site, 'alpha');
    try {
      assert.equal((await c.send('/')).status, 200, 'a small request after them');
    } finally {
      c.close();
    }
  });

  test('a request that goes straight and fails still gets lodged\'s verdict: a loop past LodgeTimeout is 504 and its worker killed, a worker that dies is 502 with why', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      const before = site.lodgedLog().length;
      const loop = await c.send('/loop');
      assert.equal(loop.status, 504);
      await eventually(() => /took longer than LodgeTimeout 2 s/.test(site.tenantLog('alpha')), 'the tenant is told which limit stopped it');
      await eventually(() => /request made no progress for LodgeTimeout 2 s; killed/.test(site.lodgedLog().slice(before)), 'lodged killed the looping worker');
      const die = await c.send('/die');
      assert.equal(die.status, 502);
      await eventually(() => /was killed by SIGKILL during the request/.test(site.errorLog()), 'Apache\'s log has lodged\'s reason');
      for (let i = 0; i < 4; i++) assert.equal((await c.send('/')).status, 200, 'the app serves on');
    } finally {
      c.close();
    }
  });

  test('what the workers count of the requests they take straight lands in lodged\'s status: counts by class, and LodgeCPU stops a request there', async () => {
    const requests = () => {
      const r = spawnSync(process.execPath, [CLI, 'status', '--socket', site.sb.socket, '--json'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      const app = statusSnapshot.parse(JSON.parse(r.stdout)).tenants.flatMap((t) => t.apps).find((a) => a.root === path.join(site.root, 'alpha'));
      assert.ok(app, 'alpha is listed');
      return app;
    };
    const c = oneConnection(site, 'alpha');
    try {
      for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      // The board is read every half second: what came before is in by then.
      await new Promise((r) => setTimeout(r, 1500));
      const before = requests().requests;
      const lodged = site.sb.lodged.pid!;
      process.kill(lodged, 'SIGSTOP');
      try {
        for (let i = 0; i < 10; i++) assert.equal((await c.send('/')).status, 200);
        assert.equal((await c.send('/nowhere', Buffer.from('x'))).status, 200);
      } finally {
        process.kill(lodged, 'SIGCONT');
      }
      await eventually(() => requests().requests.total >= before.total + 11, 'the 11 requests lodged never saw are counted');
      const now = requests();
      assert.equal(now.requests['2xx'] - before['2xx'], 11);
      assert.ok((now.latency.count ?? 0) > 0, 'with their latency');
      const long = c.send('/long?x=1');
      await eventually(() => requests().workers.some((w) => w.state === 'busy' && w.current?.method === 'GET' && w.current.path === '/long?x=1'), 'the request in hand is shown, from the board');
      assert.equal((await long).status, 200);
      fs.writeFileSync(path.join(site.root, 'alpha', '.htaccess'), 'LodgeApp wsgi app.py\nLodgeProcesses 2\nLodgeTimeout 8\nLodgeCPU 1\n');
      for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      const t0 = Date.now();
      const spin = await c.send('/spin');
      assert.equal(spin.status, 504, spin.text);
      assert.ok(Date.now() - t0 < 7500, 'stopped by LodgeCPU, before LodgeTimeout');
      await eventually(() => /LodgeCPU 1 s/.test(site.tenantLog('alpha')), 'the tenant is told LodgeCPU stopped it');
    } finally {
      c.close();
      fs.writeFileSync(path.join(site.root, 'alpha', '.htaccess'), 'LodgeApp wsgi app.py\nLodgeProcesses 2\nLodgeTimeout 2\n');
    }
  });

  test('requests waiting in the app\'s listen queue while every worker is busy start another worker, up to LodgeProcesses', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
    } finally {
      c.close();
    }
    const pids = new Set<string>();
    for (let round = 0; round < 4 && pids.size < 2; round++) {
      const answers = await Promise.all(Array.from({ length: 6 }, () => site.get('alpha', '/nap')));
      for (const a of answers) {
        assert.equal(a.status, 200, a.text);
        pids.add(a.text.split(' ')[0]);
      }
    }
    assert.equal(pids.size, 2, `two workers answered: ${[...pids].join(', ')}`);
  });

  test('an app whose settings change is a new app: its first request asks lodged, which routes it to a socket of its own', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      assert.equal((await c.send('/')).status, 200);
      fs.writeFileSync(path.join(site.root, 'alpha', '.htaccess'), 'LodgeApp wsgi app.py\nLodgeProcesses 2\nLodgeTimeout 2\nLodgeEnv LODGE_MARK two\n');
      const r = await c.send('/');
      assert.equal(r.status, 200, r.text);
      assert.match(r.text, / two$/, 'the new settings are in force');
      const again = await c.send('/');
      assert.match(again.text, / two$/);
      assert.equal(fs.readdirSync(routeDir()).filter((f) => f.endsWith('.sock')).length, 1, 'the old app\'s socket is gone');
    } finally {
      c.close();
    }
  });
});
