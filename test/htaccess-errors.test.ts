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
});
