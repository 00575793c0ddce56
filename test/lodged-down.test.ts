import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      up: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': 'def application(e, s):\n    s("200 OK", [])\n    return [b"up"]\n' },
    }, undefined, apache, { daemon: 'sandbox' });
  });
  after(async () => site?.stop());

  test('with lodged stopped Apache answers 503 and logs one clear line; it recovers when lodged is back', async () => {
    assert.equal((await site.get('up', '/')).text, 'up');
    await site.sb.stopLodged();
    const r = await site.get('up', '/');
    assert.equal(r.status, 503);
    assert.doesNotMatch(r.text, /lodged\.sock/, 'the socket path is for the log, not for visitors');
    assert.match(r.text, /try again/, 'the page says what a visitor can do');
    const lines = site.errorLog().split('\n').filter((l) => /cannot reach lodged/.test(l));
    assert.equal(lines.length, 1, site.errorLog());
    assert.match(lines[0], /lodged\.sock/);
    await site.sb.startLodged();
    const again = await site.get('up', '/');
    assert.equal(again.status, 200);
    assert.equal(again.text, 'up');
  });
});
