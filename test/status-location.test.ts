import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, forEachApache, startSite } from './helpers/site';
import { request } from './helpers/http';
import { FakeLodged } from './helpers/fake-lodged';
import { makePasswords, statusLocation } from './helpers/status-host';

const APP = 'def application(e, s):\n    s("200 OK", [])\n    return [b"the app"]\n';
const AUTH = { Authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` };


forEachApache((apache) => {
  let site: Site;
  let fake: FakeLodged;
  let authDir: string;
  before(async () => {
    const made = makePasswords();
    authDir = made.dir;
    const passwords = made.file;
    site = await startSite(
      {
        hp: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP },
        ev: {
          'index.html': 'ev',
          'peek/.htaccess': 'SetHandler lodge-status\n',
          'peek/index.html': 'x',
          'files/.htaccess': '<Files "*">\nSetHandler lodge-status\n</Files>\n',
          'files/a.html': 'x',
          'add/.htaccess': 'AddHandler lodge-status .html\n',
          'add/a.html': 'x',
          'redir/.htaccess': 'ErrorDocument 404 /lodge-status/from-errordoc\n',
        },
      },
      undefined,
      apache,
      { daemon: 'sandbox', hostDirectives: statusLocation(passwords) },
    );
    await site.sb.stopLodged();
    fake = await FakeLodged.listen(site.sb.socket);
  });
  after(async () => {
    await fake?.close();
    await site?.stop();
    if (authDir) fs.rmSync(authDir, { recursive: true, force: true });
  });

  test("without the host's credentials Apache answers 401 and lodged is never asked", async () => {
    const r = await request(site.sb.port, 'localhost', '/lodge-status/nocreds');
    assert.equal(r.status, 401);
    assert.equal(fake.last('/lodge-status/nocreds'), undefined);
  });

  test("with them, lodged's answer: asked as APP kind=status (no root), REQ with REMOTE_USER, SCRIPT_NAME the Location, PATH_INFO the rest", async () => {
    const r = await request(site.sb.port, 'localhost', '/lodge-status/metrics?json=1', { headers: AUTH });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(r.text), { kind: 'status', user: 'admin', scriptName: '/lodge-status', pathInfo: '/metrics', query: 'json=1', body: 0 });
    const seen = fake.last('/lodge-status/metrics')!;
    assert.equal(seen.flags, 0, 'no borrowing, no tunnel');
    assert.deepEqual([...seen.app.keys()], ['kind']);
    assert.equal(seen.req.get('AUTH_TYPE'), 'Basic');
    assert.equal(seen.req.get('REQUEST_METHOD'), 'GET');
    assert.equal(seen.req.get('HTTP_HOST'), `localhost:${site.sb.port}`);
    assert.ok(seen.req.get('REMOTE_ADDR'));
    assert.deepEqual(seen.events, ['BODY_END', 'HEAD 200', 'END']);
  });

  test("the status location answers on a tenant's own host too, even where its app claims every path", async () => {
    const r = await request(site.sb.port, 'hp.localhost', '/lodge-status', { headers: AUTH });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).kind, 'status');
    assert.equal(JSON.parse(r.text).pathInfo, '');
  });

  test('a POST form reaches lodged whole (BODY, BODY_END); a body over 64 KiB gets 413 and never reaches lodged', async () => {
    const ok = await request(site.sb.port, 'localhost', '/lodge-status/restart', { headers: AUTH, body: 'app=x&token=y' });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.text).body, 13);
    assert.deepEqual(fake.last('/lodge-status/restart')!.events, ['BODY', 'BODY_END', 'HEAD 200', 'END']);
    const chunked = await request(site.sb.port, 'localhost', '/lodge-status/chunked', { headers: AUTH, body: 'a'.repeat(65536), chunked: 4096, lenient: true });
    assert.equal(chunked.status, 200, 'exactly 64 KiB, chunked, is taken');
    const big = await request(site.sb.port, 'localhost', '/lodge-status/big', { headers: AUTH, body: 'a'.repeat(65537), lenient: true });
    assert.equal(big.status, 413);
    const bigChunked = await request(site.sb.port, 'localhost', '/lodge-status/bigchunked', { headers: AUTH, body: 'a'.repeat(200_000), chunked: 8192, lenient: true });
    assert.equal(bigChunked.status, 413);
    assert.equal(fake.last('/lodge-status/big'), undefined);
    assert.match(site.errorLog(), /LG00065: lodge: a request body over 65536 bytes for the status location refused/);
  });

  test("SetHandler lodge-status in a tenant's .htaccess gets a 404 and a log line naming that .htaccess; lodged never sees the request", async () => {
    const r = await request(site.sb.port, 'ev.localhost', '/peek/');
    assert.equal(r.status, 404);
    assert.equal(fake.last('/peek'), undefined);
    const htaccess = path.join(fs.realpathSync(site.root), 'ev', 'peek', '.htaccess');
    assert.ok(site.errorLog().includes(`LG00063: lodge: SetHandler lodge-status in ${htaccess} refused for /peek/`), site.errorLog());
  });

  test("nor inside a <Files> section of the tenant's .htaccess", async () => {
    const r = await request(site.sb.port, 'ev.localhost', '/files/a.html');
    assert.equal(r.status, 404);
    assert.equal(fake.last('/files'), undefined);
    assert.ok(site.errorLog().includes(`files${path.sep}.htaccess refused for /files/a.html`));
  });

  test("nor by AddHandler in the tenant's .htaccess", async () => {
    const r = await request(site.sb.port, 'ev.localhost', '/add/a.html');
    assert.equal(r.status, 404);
    assert.equal(fake.last('/add'), undefined);
    assert.match(site.errorLog(), /LG00064: lodge: handler lodge-status for \/add\/a\.html refused: no SetHandler lodge-status of the server configuration applies there/);
  });

  test("nor by an internal redirect a tenant's ErrorDocument makes, even for a visitor with the host's credentials", async () => {
    const r = await request(site.sb.port, 'ev.localhost', '/redir/missing', { headers: AUTH });
    assert.equal(r.status, 404);
    assert.equal(fake.last('/lodge-status/from-errordoc'), undefined);
    assert.match(site.errorLog(), /LG00073: lodge: an internal redirect to the status location \/lodge-status\/from-errordoc refused/);
  });

  test('the refused places still serve their files otherwise, and the tenant\'s app its own paths', async () => {
    assert.equal((await request(site.sb.port, 'ev.localhost', '/')).text, 'ev');
    const r = await request(site.sb.port, 'hp.localhost', '/app-path');
    assert.equal(r.status, 200);
    assert.equal(fake.last('/app-path')!.app.get('kind'), 'wsgi');
  });
});
