import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { oneConnection } from './helpers/one-connection';

// The tenant's request share for requests that go straight to the app's socket, which
// lodged never sees: while the tenant holds its share, lodged moves the app's socket
// aside, so mod_lodge asks lodged, which refuses with 503 + Retry-After at once; once
// the tenant holds less, the socket is back and requests go straight again.
// (test/tenant-share-apache.test.ts: the same share, request by request, on lodged's path.)

const SHARE = 2;

// /hold/<token>: marks itself held, then waits for the file release-<token> beside it.
const APP = `
import os, time, uuid
HERE = os.path.dirname(os.path.abspath(__file__))
def application(environ, start_response):
    p = environ["PATH_INFO"]
    if p.startswith("/hold/"):
        token = p[len("/hold/"):]
        open(os.path.join(HERE, "holding-%s-%s" % (token, uuid.uuid4().hex)), "w").close()
        for _ in range(1200):
            if os.path.exists(os.path.join(HERE, "release-" + token)):
                break
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d" % os.getpid()).encode()]
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      { greedy: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 4\n', 'app.py': APP } },
      { direct: true, limits: { tenantRequests: SHARE, tenantProcesses: 4 } },
      apache,
    );
  });
  after(async () => {
    if (site) fs.writeFileSync(path.join(site.root, 'greedy', 'release-held'), '');
    await site?.stop();
  });

  const dir = () => path.join(path.dirname(site.sb.socket), 'apps');
  const sockets = (suffix: string) => (fs.existsSync(dir()) ? fs.readdirSync(dir()).filter((f) => f.endsWith(suffix)) : []);
  const holding = () => fs.readdirSync(path.join(site.root, 'greedy')).filter((f) => f.startsWith('holding-held-')).length;

  test('a tenant that holds its share: its app socket is moved aside, a request that would go straight gets 503 at once from lodged; served straight again once it holds less', async () => {
    const c = oneConnection(site, 'greedy');
    try {
      // The first request starts the app; lodged routes the next ones to its socket.
      for (let i = 0; i < 3; i++) assert.equal((await c.send('/')).status, 200);
      assert.equal(sockets('.sock').length, 1, 'the app has its socket');

      const held = Array.from({ length: SHARE }, () => site.get('greedy', '/hold/held', { timeoutMs: 60_000 }));
      await eventually(() => holding() === SHARE, `${SHARE} requests held`);
      await eventually(() => sockets('.sock.shut').length === 1 && sockets('.sock').length === 0, 'the socket is moved aside while the tenant holds its share');

      // Two of the app's four workers are idle: without the share this would be served.
      const t0 = Date.now();
      const refused = await c.send('/').catch((err: Error) => {
        throw new Error(`${err.message}; Apache's log: ${site.errorLog().split('\n').slice(-4).join(' | ')}; lodged's: ${site.lodgedLog().split('\n').slice(-4).join(' | ')}`);
      });
      assert.equal(refused.status, 503, refused.text);
      assert.match(String(refused.headers['retry-after']), /^\d+$/);
      assert.ok(Date.now() - t0 < 5000, 'refused at once, not after a queue timeout');
      assert.match(site.tenantLog('greedy'), new RegExp(`refused with 503: your apps already hold ${SHARE} requests`));

      fs.writeFileSync(path.join(site.root, 'greedy', 'release-held'), '');
      for (const r of await Promise.all(held)) assert.equal(r.status, 200, r.text);
      await eventually(() => sockets('.sock').length === 1 && sockets('.sock.shut').length === 0, 'the socket is back once the tenant holds less');
      for (let i = 0; i < 3; i++) assert.equal((await c.send('/')).status, 200);
    } finally {
      c.close();
    }
  });
});
