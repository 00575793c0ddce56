import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Browser, Page } from 'playwright-core';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { request } from './helpers/http';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { launchChromium, watchedPage } from './helpers/status-host';
import { asWebUser, body, frame, pairs } from './helpers/web-user-frames';

// A tenant's own dashboard, as a tenant turns it on: `LodgeDashboard /.lodge` and
// Apache's Basic auth in the .htaccess of its app, through Apache 2.4 and 1.3, with
// real tenants (Unix users) beside it whose apps must never show on it.

const APP = `
import os, sys
def application(environ, start_response):
    print("alpha printed this line", os.getpid(), file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`;
const BROKEN = 'import os\nimport no_such_module_for_the_dashboard\n';

const CRED = { alpha: ['alice', 'alpha-pass'], gamma: ['gina', 'gamma-pass'] } as const;
const basic = (t: keyof typeof CRED) => ({ Authorization: `Basic ${Buffer.from(CRED[t].join(':')).toString('base64')}` });

/** The tenant's .htaccess: its app, its dashboard, and the auth that guards the dashboard. */
const guarded = (passwords: string, entry = 'app.py') => [
  `LodgeApp wsgi ${entry}`,
  'LodgeDashboard /.lodge',
  '<Files ".lodge">',
  '  AuthType Basic',
  '  AuthName "my dashboard"',
  `  AuthUserFile "${passwords}"`,
  '  Require valid-user',
  '</Files>',
  '',
].join('\n');

forEachApache((apache) => {
  let site: Site;
  let authDir: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const dash = (t: string, p = '', opts: Parameters<typeof request>[3] = {}) => site.get(t, `/.lodge${p}`, opts);

  before(async () => {
    authDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-dash-auth-'));
    fs.chmodSync(authDir, 0o755);
    for (const [t, [user, pass]] of Object.entries(CRED)) {
      fs.writeFileSync(path.join(authDir, t), execFileSync('htpasswd', ['-nbd', user, pass]), { mode: 0o644 });
    }
    site = await startSite(
      {
        alpha: { '.htaccess': guarded(path.join(authDir, 'alpha')), 'app.py': APP },
        bravo: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP },
        gamma: { '.htaccess': guarded(path.join(authDir, 'gamma')), 'app.py': BROKEN },
        delta: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeDashboard /.lodge\n', 'app.py': APP },
      },
      undefined,
      apache,
    );
    for (const t of ['alpha', 'bravo']) assert.equal((await site.get(t, '/')).status, 200);
    assert.equal((await site.get('gamma', '/')).status, 502);
    browser = await launchChromium();
    page = await watchedPage(browser, problems, { username: CRED.alpha[0], password: CRED.alpha[1] });
  });
  after(async () => {
    await browser?.close();
    await site?.stop();
    if (authDir) fs.rmSync(authDir, { recursive: true, force: true });
  });

  test('without credentials Apache refuses the dashboard (401); the app itself stays open', async () => {
    assert.equal((await dash('alpha')).status, 401);
    assert.equal((await dash('alpha', '/json')).status, 401);
    assert.equal((await site.get('alpha', '/')).status, 200);
  });

  test('a LodgeDashboard without auth lines gets a 403 page saying why, not the dashboard nor the app', async () => {
    const r = await dash('delta');
    assert.equal(r.status, 403);
    assert.match(r.text, /the dashboard needs Apache authentication in this \.htaccess \(AuthType, AuthUserFile, Require valid-user\)/i);
    assert.doesNotMatch(r.text, /^\d+$/, 'the app did not answer');
    await eventually(() => /LG00075/.test(site.errorLog()), 'the refusal is logged with its number');
  });

  test('A\'s dashboard with A\'s credentials shows A\'s app, its limits and its log, and nothing of B', async () => {
    const r = await dash('alpha', '/', { headers: basic('alpha') });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, new RegExp(`data-root="${site.root}/alpha"`));
    assert.match(r.text, /Workers 1 of \d+/);
    assert.match(r.text, /alpha printed this line/, 'the log tail shows what the app printed');
    assert.doesNotMatch(r.text, /bravo|gamma|delta/, 'no other tenant\'s directory appears');
    const j = await dash('alpha', '/json', { headers: basic('alpha') });
    assert.equal(j.status, 200);
    assert.doesNotMatch(j.text, /bravo|gamma|delta/);
    const got = JSON.parse(j.text);
    const snap = statusSnapshot.parse(got.snapshot);
    assert.deepEqual(snap.tenants.flatMap((t) => t.apps.map((a) => a.root)), [`${site.root}/alpha`]);
    assert.equal(snap.tenants[0].uid, site.users.alpha.uid);
    assert.match(got.log.text, /alpha printed this line/);
  });

  test('A\'s credentials do not open another tenant\'s dashboard', async () => {
    assert.equal((await dash('gamma', '/', { headers: basic('alpha') })).status, 401);
  });

  test('an app that fails to import shows its start failure with file and line on its dashboard, and the traceback in the log tail', async () => {
    const r = await dash('gamma', '/', { headers: basic('gamma') });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /class="state crashed"/);
    assert.match(r.text, /<code class="reason">[^<]*app\.py[^<]*line 2[^<]*no_such_module_for_the_dashboard/);
    assert.match(r.text, /Traceback/);
    assert.doesNotMatch(r.text, /alpha|bravo|delta/);
  });

  test('the clear button\'s action forgets the start failure and its events', async () => {
    const p = await watchedPage(browser, problems, { username: CRED.gamma[0], password: CRED.gamma[1] });
    await p.goto(`http://gamma.localhost:${site.sb.port}/.lodge`);
    await p.click('button[data-action="clear"]');
    await p.waitForFunction(() => /clear: done/.test(document.querySelector('#notice')?.textContent ?? ''));
    const j = JSON.parse((await dash('gamma', '/json', { headers: basic('gamma') })).text);
    assert.deepEqual(j.snapshot.events, []);
    assert.equal(j.snapshot.tenants[0].apps[0].reason, undefined);
    await p.close();
  });

  test('the restart button gives the app a new worker pid (headless Chromium, through Apache)', async () => {
    const pid = Number((await site.get('alpha', '/')).text);
    await page.goto(`http://alpha.localhost:${site.sb.port}/.lodge`);
    await page.waitForSelector(`article.app[data-root="${site.root}/alpha"]`);
    await page.click('button[data-action="restart"]');
    await page.waitForFunction(() => /restart: done/.test(document.querySelector('#notice')?.textContent ?? ''));
    await eventually(async () => Number((await site.get('alpha', '/')).text) !== pid, 'a new worker serves alpha');
    // The page refreshes itself: its live part is fetched again.
    await page.waitForFunction(() => document.body.dataset.live === 'yes');
    assert.deepEqual(problems, []);
  });

  test('a POST without the page\'s token is refused', async () => {
    const pid = Number((await site.get('alpha', '/')).text);
    const forged = await dash('alpha', '/restart', {
      method: 'POST',
      headers: { ...basic('alpha'), 'Content-Type': 'application/x-www-form-urlencoded', Origin: `http://alpha.localhost:${site.sb.port}` },
      body: 'token=forged',
    });
    assert.equal(forged.status, 403);
    assert.equal(Number((await site.get('alpha', '/')).text), pid, 'the app was not restarted');
  });

  test('a forged APP kind=dashboard from the web server\'s user, for a directory whose file has no LodgeDashboard, is refused', async () => {
    const root = path.join(site.root, 'bravo');
    const app = frame(0x01, pairs([['kind', 'dashboard'], ['root', root], ['config', `${root}/.htaccess`]]));
    const req = frame(0x02, pairs([['REQUEST_METHOD', 'GET'], ['SCRIPT_NAME', '/.lodge'], ['PATH_INFO', '/json'], ['HTTP_HOST', 'bravo.localhost'], ['REMOTE_USER', 'x']]));
    const reply = body(await asWebUser(site.sb.socket, Buffer.concat([app, req, frame(0x04, Buffer.alloc(0))])));
    assert.match(reply, /^ERROR [45]\d\d$/);
    assert.doesNotMatch(reply, /bravo printed|"tenants"/);
    await eventually(() => /bravo\/\.htaccess declares no LodgeDashboard/.test(site.lodgedLog()), 'lodged says why');
  });
});
