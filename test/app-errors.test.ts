import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

const OK = `
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      broken: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': 'import os\nimport no_such_module_here\n' + OK },
      badhdr: {
        '.htaccess': 'LodgeApp wsgi app.py\n',
        'app.py': `
def application(environ, start_response):
    if environ["PATH_INFO"] == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fine"]
    if environ["PATH_INFO"] == "/status":
        start_response("twohundred", [])
        return [b""]
    start_response("200 OK", [("X-Bad", "a\\r\\nSet-Cookie: evil=1")])
    return [b"should not be seen"]
`,
      },
      raises: {
        '.htaccess': 'LodgeApp wsgi app.py\n',
        'app.py': `
def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise ValueError("tenant bug 1234")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]
`,
      },
      fine: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': OK },
    }, undefined, apache);
  });
  after(async () => site?.stop());

  test('an app that fails to import gets an error page; the logs name the file and the exception', async () => {
    const r = await site.get('broken', '/');
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.text, /no_such_module_here/, 'visitors do not see the traceback');
    assert.match(r.text, /failed to answer.*logs\/lodge\.log/s, 'the page tells the site owner where to look');
    await eventually(() => /app\.py.*ModuleNotFoundError.*no_such_module_here/.test(site.errorLog()), 'Apache error log line');
    const tenant = site.tenantLog('broken');
    assert.match(tenant, /Traceback/);
    assert.match(tenant, /app\.py", line 2/);
    assert.match(tenant, /ModuleNotFoundError: No module named 'no_such_module_here'/);
    // Another tenant is not affected.
    assert.equal((await site.get('fine', '/')).text, 'fine');
  });

  test('a header with a newline costs that request a 502, and the app keeps serving', async () => {
    const r = await site.get('badhdr', '/');
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-bad'], undefined);
    assert.equal(r.headers['set-cookie'], undefined);
    assert.doesNotMatch(r.text, /should not be seen/);
    await eventually(() => /X-Bad/i.test(site.errorLog() + site.tenantLog('badhdr')), 'the bad header is named in a log');
    assert.equal((await site.get('badhdr', '/status')).status, 502, 'a malformed status line');
    assert.equal((await site.get('badhdr', '/ok')).text, 'fine');
  });

  test('an exception in the app is a 500 with the traceback in the tenant log; the next request works', async () => {
    const r = await site.get('raises', '/boom');
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.text, /tenant bug 1234/);
    await eventually(() => /ValueError: tenant bug 1234/.test(site.tenantLog('raises')), 'traceback in the tenant log');
    assert.equal((await site.get('raises', '/')).text, 'fine');
  });
});
