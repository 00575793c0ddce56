import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { oneConnection, servedAtOnce } from './helpers/one-connection';
import { statusSnapshot } from '../sidecar/src/status/schema';

const CLI = path.join(__dirname, '..', 'sidecar', 'src', 'cli', 'main.js');

// A Node app on the default path (lodged.json `direct`): its workers accept on the app's
// own socket, several connections at once up to LodgeConcurrency, so once routed its
// requests are served while lodged is stopped. A request past LodgeTimeout is stopped by
// itself when the worker's event loop runs; the worker is killed only when it does not.

const SERVER = `
const http = require('http');
let inFlight = 0, most = 0;
http.createServer((req, res) => {
  if (req.url === '/spin') { for (;;) {} }
  if (req.url === '/hang') return;                      // never answered; the loop stays free
  if (req.url.startsWith('/slow')) {
    inFlight++;
    most = Math.max(most, inFlight);
    setTimeout(() => { inFlight--; res.end(process.pid + ' ' + most); }, 600);
    return;
  }
  let n = 0;
  req.on('data', (c) => (n += c.length));
  req.on('end', () => res.end(process.pid + ' ' + n));
}).listen(process.env.PORT || 3000);
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ dir: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 1\nLodgeConcurrency 4\nLodgeTimeout 2\n', 'server.js': SERVER } }, {}, apache);
  });
  after(async () => site?.stop());

  test('routed to the app\'s socket, one Node worker serves several requests at once while lodged is stopped, bodies included, and lodged counts them from the board', async () => {
    const app = () => {
      const r = spawnSync(process.execPath, [CLI, 'status', '--socket', site.sb.socket, '--json'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      return statusSnapshot.parse(JSON.parse(r.stdout)).tenants.flatMap((t) => t.apps).find((a) => a.root === path.join(site.root, 'dir'))!;
    };
    // Three kept-alive connections, each one Apache process (or thread) that learns the route.
    const conns = [0, 1, 2].map(() => oneConnection(site, 'dir'));
    try {
      for (const c of conns) for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      await new Promise((r) => setTimeout(r, 500)); // the board's last read is in the status
      const before = app().requests.total;
      const lodged = site.sb.lodged.pid!;
      process.kill(lodged, 'SIGSTOP');
      let pid: string;
      try {
        const small = await conns[0].send('/');
        assert.equal(small.status, 200, small.text);
        pid = small.text.split(' ')[0];
        const body = Buffer.alloc(1 << 20, 0x61);
        const up = await conns[0].send('/up', body);
        assert.equal(up.status, 200, up.text);
        assert.equal(up.text, `${pid} ${body.length}`, 'the whole body reached the app, in the same worker');
        await servedAtOnce(conns, '/slow', pid);
      } finally {
        process.kill(lodged, 'SIGCONT');
      }
      await eventually(() => app().requests.total >= before + 5, 'the five requests lodged never saw are counted from the board');
    } finally {
      for (const c of conns) c.close();
    }
  });

  test('past LodgeTimeout a request from the app\'s socket is 504 and stops alone while the loop runs: the worker and its other request live on; a blocked loop gets the worker killed', async () => {
    const a = oneConnection(site, 'dir');
    const b = oneConnection(site, 'dir');
    try {
      for (const c of [a, b]) for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      const pid = (await a.send('/')).text.split(' ')[0];
      const hang = a.send('/hang');
      await new Promise((r) => setTimeout(r, 1600));
      const slow = b.send('/slow');
      assert.equal((await hang).status, 504);
      const other = await slow;
      assert.equal(other.status, 200, 'the request beside it was answered');
      assert.equal(other.text.split(' ')[0], pid);
      await eventually(() => /GET \/hang: took longer than LodgeTimeout 2 s; stopped$/m.test(site.tenantLog('dir')), 'the tenant is told which request was stopped');
      // Past ABORT_GRACE (5 s) the worker still serves: it was not killed.
      await new Promise((r) => setTimeout(r, 6000));
      const after = await a.send('/');
      assert.equal(after.status, 200);
      assert.equal(after.text.split(' ')[0], pid, 'the same worker');
      assert.doesNotMatch(site.tenantLog('dir'), /event loop was blocked/);

      const spin = await a.send('/spin');
      assert.equal(spin.status, 504);
      await eventually(() => /its event loop was blocked \(GET \/spin ran past LodgeTimeout 2 s and did not stop\); killed/.test(site.tenantLog('dir')), 'the blocked worker is killed', 15_000);
      await eventually(async () => {
        const r = await b.send('/');
        return r.status === 200 && r.text.split(' ')[0] !== pid;
      }, 'a new worker serves');
    } finally {
      a.close();
      b.close();
    }
  });
});
