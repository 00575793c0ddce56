import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      badkind: { '.htaccess': 'LodgeApp perl app.pl\n', 'app.pl': '' },
      badtime: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout soon\n', 'app.py': '' },
      escape: { '.htaccess': 'LodgeApp wsgi ../other/app.py\n' },
      manylanes: { '.htaccess': 'LodgeApp node server.js\nLodgeConcurrency 65\n', 'server.js': '' },
      nolanes: { '.htaccess': 'LodgeApp asgi main.py:app\nLodgeConcurrency 0\n', 'main.py': '' },
      wordlanes: { '.htaccess': 'LodgeApp asgi main.py:app\nLodgeConcurrency lots\n', 'main.py': '' },
      mixed: {
        'index.html': 'static home',
        'broken/.htaccess': 'LodgeApp wsgi\n',
        'ok/.htaccess': 'LodgeApp wsgi app.py\n',
        'ok/app.py': 'def application(e, s):\n    s("200 OK", [])\n    return [b"ok app"]\n',
      },
    }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a bad LodgeApp line costs only that directory a 500, and the log says which file and why', async () => {
    const r = await site.get('badkind', '/');
    assert.equal(r.status, 500);
    const log = site.errorLog();
    assert.match(log, /badkind\/\.htaccess: LodgeApp .*'wsgi'.*perl/);
    assert.equal((await site.get('escape', '/')).status, 500);
    assert.match(site.errorLog(), /escape\/\.htaccess: LodgeApp\b.*\.\./);
    assert.equal((await site.get('mixed', '/broken/')).status, 500);
    assert.match(site.errorLog(), /mixed\/broken\/\.htaccess: LodgeApp/);
    // Neighbours, and the rest of the same site, are untouched.
    assert.equal((await site.get('mixed', '/index.html')).text, 'static home');
    assert.equal((await site.get('mixed', '/ok/')).text, 'ok app');
  });

  test('a bad LodgeTimeout value names the directive and the value', async () => {
    assert.equal((await site.get('badtime', '/')).status, 500);
    assert.match(site.errorLog(), /badtime\/\.htaccess: LodgeTimeout.*soon/);
  });

  test('a LodgeConcurrency outside 1-64 costs its directory a 500, and the log gives the range and the value', async () => {
    for (const [dir, value] of [['manylanes', '65'], ['nolanes', '0'], ['wordlanes', 'lots']]) {
      assert.equal((await site.get(dir, '/')).status, 500, dir);
      assert.match(
        site.errorLog(),
        new RegExp(`${dir}/\\.htaccess: LodgeConcurrency takes a number of requests in flight per worker from 1 to 64 \\(e\\.g\\. LodgeConcurrency 10\\), got '${value}'`),
      );
    }
  });
});
