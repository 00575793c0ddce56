import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, Page } from 'playwright-core';
import { checkConfig } from '../sidecar/src/config/load';
import { Registry } from '../sidecar/src/pool/registry';
import { listen } from '../sidecar/src/server/listener';
import { StatusWeb } from '../sidecar/src/status/web';
import { FakeApacheHttpShim } from './helpers/fake-apache-http-shim';
import { FakeStatusSource, rootOf } from './helpers/fake-status-source';
import { launchChromium, watchedPage } from './helpers/status-host';

// The host status page in headless Chromium, served by lodged's real listener through
// FakeApacheHttpShim (standing in for Apache and mod_lodge), with 1,000 tenants from
// FakeStatusSource: 5 busy, 995 never requested.

const BUSY = 5;
const IDLE = 995;

let dir: string;
let server: net.Server;
let registry: Registry;
let web: StatusWeb;
let source: FakeStatusSource;
let shim: FakeApacheHttpShim;
let browser: Browser;
let page: Page;
const problems: string[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-status-page-'));
  const socketPath = path.join(dir, 'lodged.sock');
  registry = new Registry(checkConfig({}, 'test'), true);
  source = new FakeStatusSource(BUSY, IDLE);
  web = new StatusWeb(source, undefined, 250);
  server = await listen({ socketPath, allowUids: [] }, registry, web);
  shim = new FakeApacheHttpShim(socketPath);
  await shim.start();
  browser = await launchChromium();
  page = await watchedPage(browser, problems);
});

after(async () => {
  await browser?.close();
  await shim?.stop();
  web?.close();
  registry?.close();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const rows = () => page.locator('#rows > tr[data-root]');
const cellOf = (root: string, cls: string) => page.locator(`#rows > tr[data-root="${root}"] td.${cls}`);

test('the page loads with no console errors, goes live, lists the busy tenants and folds the 995 idle ones away', async () => {
  await page.goto(shim.url);
  await page.waitForSelector('body[data-conn="live"]');
  assert.equal(await rows().count(), BUSY);
  for (let i = 0; i < BUSY; i++) assert.equal(await cellOf(rootOf(2000 + i), 'requests').count(), 1);
  assert.match(await page.locator('#more').innerText(), /995 idle apps folded away/);
  assert.match(await page.locator('#summary').innerText(), /1000\s+tenants/);
  assert.deepEqual(problems, []);
});

test('the counters and the chart change without a reload, in the same row nodes (a click in progress is not lost)', async () => {
  const cell = cellOf(rootOf(2000), 'requests');
  await page.evaluate((sel) => ((document.querySelector(sel) as unknown as { lodgeMark: number }).lodgeMark = 1), `#rows > tr[data-root="${rootOf(2000)}"] button[data-action="restart"]`);
  const before = Number(await cell.innerText());
  await page.waitForFunction(({ sel, n }) => Number(document.querySelector(sel)?.textContent) > n, { sel: `#rows > tr[data-root="${rootOf(2000)}"] td.requests`, n: before });
  await page.waitForFunction(() => (document.querySelector('#chart-rps polyline')?.getAttribute('points') ?? '').split(' ').length >= 3);
  const kept = await page.evaluate((sel) => (document.querySelector(sel) as unknown as { lodgeMark?: number }).lodgeMark, `#rows > tr[data-root="${rootOf(2000)}"] button[data-action="restart"]`);
  assert.equal(kept, 1, 'the restart button is the same node after the update');
  assert.deepEqual(problems, []);
});

test('sorting, filtering, and showing the idle apps (at most 200 rows drawn)', async () => {
  await page.click('th[data-sort="requests"]');
  assert.equal(await rows().first().getAttribute('data-root'), rootOf(2000 + BUSY - 1), 'most requests first');
  await page.fill('#filter', 'tenant3');
  await page.waitForFunction(() => document.querySelectorAll('#rows > tr[data-root]').length === 1);
  assert.equal(await rows().first().getAttribute('data-root'), rootOf(2003));
  await page.check('#show-idle');
  // tenant3, tenant30..39, tenant300..399: 111 apps.
  await page.waitForFunction(() => document.querySelectorAll('#rows > tr[data-root]').length === 111);
  await page.fill('#filter', '');
  await page.waitForFunction(() => document.querySelectorAll('#rows > tr[data-root]').length === 200);
  assert.match(await page.locator('#more').innerText(), /showing 200 of 1000 apps/);
  await page.uncheck('#show-idle');
  await page.waitForFunction((n) => document.querySelectorAll('#rows > tr[data-root]').length === n, BUSY);
  assert.deepEqual(problems, []);
});

test('the restart button restarts the app through the POST with the token (its worker gets a new pid); the stop button stops the worker', async () => {
  const root = rootOf(2001);
  const before = source.pidOf(root);
  await page.click(`#rows > tr[data-root="${root}"] button[data-action="expand"]`);
  await page.waitForSelector(`#rows tr.detail td.pid`);
  await page.click(`#rows > tr[data-root="${root}"] button[data-action="restart"]`);
  await page.waitForFunction(() => /done/.test(document.querySelector('#notice')?.textContent ?? ''));
  assert.deepEqual(source.restarted, [root]);
  assert.notEqual(source.pidOf(root), before);
  await page.waitForFunction((pid) => document.querySelector('#rows tr.detail td.pid')?.textContent === String(pid), source.pidOf(root));
  assert.deepEqual(problems, []);
  await page.screenshot({ path: path.join(dir, 'status-page.png'), fullPage: true });
  const pid = source.pidOf(root)!;
  await page.click(`#rows tr.detail tr[data-pid="${pid}"] button[data-action="stop"]`);
  await page.waitForFunction((p) => (document.querySelector('#notice')?.textContent ?? '') === `stop worker ${p}: done`, pid);
  assert.deepEqual(source.stopped, [pid]);
  await page.waitForSelector('#rows tr.detail td.pid', { state: 'detached' });
  assert.deepEqual(problems, []);
  if (process.env.LODGE_SCREENSHOT) fs.copyFileSync(path.join(dir, 'status-page.png'), process.env.LODGE_SCREENSHOT);
});

test('"disconnected" shows when the WebSocket drops, and the page goes live again once it can reconnect', async () => {
  shim.refuseTunnels = true;
  shim.dropTunnels();
  await page.waitForSelector('body[data-conn="disconnected"]');
  assert.match(await page.locator('#conn').innerText(), /disconnected, retrying in \d+ s/);
  shim.refuseTunnels = false;
  await page.waitForSelector('body[data-conn="live"]', { timeout: 60_000 });
  assert.equal(await page.locator('#conn').innerText(), 'live');
});
