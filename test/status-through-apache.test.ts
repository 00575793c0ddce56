import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { request } from './helpers/http';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { STATUS_PASSWORD, STATUS_USER, launchChromium, makePasswords, statusLocation, watchedPage } from './helpers/status-host';

// The whole status path as a host runs it: Apache (2.4 and 1.3) with the status
// location in its server config behind Basic auth, mod_lodge forwarding it and
// tunnelling its WebSocket, lodged's real model of real tenants, headless Chromium.

const AUTH = { Authorization: `Basic ${Buffer.from(`${STATUS_USER}:${STATUS_PASSWORD}`).toString('base64')}` };

const APP = `
import os, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(5)
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read()
        status = "201 Created" if environ["PATH_INFO"] == "/made" else "404 Not Found"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"posted"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`;

forEachApache((apache) => {
  let site: Site;
  let authDir: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const url = (p = '') => `http://127.0.0.1:${site.sb.port}/lodge-status${p}`;
  const statusGet = (p: string, headers: Record<string, string> = {}) =>
    request(site.sb.port, '127.0.0.1', `/lodge-status${p}`, { headers: { ...AUTH, ...headers } });

  before(async () => {
    const passwords = makePasswords();
    authDir = passwords.dir;
    site = await startSite(
      {
        alpha: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 2\n', 'app.py': APP },
        beta: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP },
      },
      undefined,
      apache,
      { hostDirectives: statusLocation(passwords.file) },
    );
    for (const t of ['alpha', 'beta']) assert.equal((await site.get(t, '/')).status, 200);
    browser = await launchChromium();
    page = await watchedPage(browser, problems, { username: STATUS_USER, password: STATUS_PASSWORD });
  });
  after(async () => {
    await browser?.close();
    await site?.stop();
    if (authDir) fs.rmSync(authDir, { recursive: true, force: true });
  });

  test('without the host\'s credentials the page is refused by Apache', async () => {
    const r = await request(site.sb.port, '127.0.0.1', '/lodge-status');
    assert.equal(r.status, 401);
  });

  test('the page loads through Apache with no console errors, goes live over the tunnelled WebSocket, and lists both tenants', async () => {
    await page.goto(url());
    await page.waitForSelector('body[data-conn="live"]');
    for (const t of ['alpha', 'beta']) {
      await page.waitForSelector(`#rows > tr[data-root="${site.root}/${t}"]`);
    }
    assert.deepEqual(problems, []);
  });

  test('under load the request counter changes without a reload; a watchdog kill shows as an event', async () => {
    const cell = `#rows > tr[data-root="${site.root}/alpha"] td.requests`;
    const before = Number(await page.locator(cell).innerText());
    for (let i = 0; i < 20; i++) assert.equal((await site.get('alpha', '/')).status, 200);
    await page.waitForFunction(({ sel, n }) => Number(document.querySelector(sel)?.textContent) >= n + 20, { sel: cell, n: before });
    assert.equal((await site.get('alpha', '/slow')).status, 504);
    await page.waitForFunction(() => /kill/.test(document.querySelector('#events')?.textContent ?? ''), undefined, { timeout: 15_000 });
    assert.deepEqual(problems, []);
  });

  test('the restart button gives the app a new worker pid', async () => {
    const pid = Number((await site.get('beta', '/')).text);
    await page.click(`#rows > tr[data-root="${site.root}/beta"] button[data-action="restart"]`);
    await page.waitForFunction(() => /done/.test(document.querySelector('#notice')?.textContent ?? ''));
    await eventually(async () => Number((await site.get('beta', '/')).text) !== pid, 'a new worker serves beta');
    assert.deepEqual(problems, []);
  });

  test('a POST without the page\'s token is refused; a WebSocket from a foreign Origin is refused', async () => {
    const forged = await request(site.sb.port, '127.0.0.1', '/lodge-status/restart', {
      method: 'POST',
      headers: { ...AUTH, 'Content-Type': 'application/x-www-form-urlencoded', Origin: `http://127.0.0.1:${site.sb.port}` },
      body: `root=${encodeURIComponent(`${site.root}/beta`)}`,
    });
    assert.equal(forged.status, 403);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${site.sb.port}/lodge-status/ws`, { headers: { ...AUTH, Origin: 'http://evil.example' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('a foreign Origin opened the WebSocket')));
      ws.on('error', () => undefined);
    });
    assert.equal(status, 403);
  });

  test('requests with a body (the worker lent to mod_lodge) are counted by the status they got', async () => {
    const beta = async () => {
      const snap = statusSnapshot.parse(JSON.parse((await statusGet('?json')).text));
      const app = snap.tenants.flatMap((t) => t.apps).find((a) => a.root === `${site.root}/beta`);
      assert.ok(app, 'beta is listed');
      return app.requests;
    };
    const before = await beta();
    for (let i = 0; i < 3; i++) assert.equal((await site.get('beta', '/made', { body: 'x'.repeat(1000) })).status, 201);
    assert.equal((await site.get('beta', '/nowhere', { body: 'y' })).status, 404);
    await eventually(async () => (await beta()).total >= before.total + 4, 'the four requests are counted');
    const now = await beta();
    assert.equal(now['2xx'] - before['2xx'], 3, '201s as 2xx');
    assert.equal(now['4xx'] - before['4xx'], 1, 'the 404 as 4xx');
    assert.equal(now.unseen ?? 0, before.unseen ?? 0, 'no lent request left without a status');
  });

  test('?json validates against its schema; ?metrics passes promtool', async () => {
    const j = await statusGet('?json');
    assert.equal(j.status, 200);
    const snap = statusSnapshot.parse(JSON.parse(j.text));
    const roots = snap.tenants.flatMap((t) => t.apps.map((a) => a.root));
    assert.ok(roots.includes(`${site.root}/alpha`) && roots.includes(`${site.root}/beta`));
    const m = await statusGet('?metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /^lodge_up 1$/m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  });
});
