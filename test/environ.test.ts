import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

const APP = `
import json, os, sys
def application(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["wsgi.version"] = list(environ["wsgi.version"])
    for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
        out[k] = environ[k]
    out["has_input_read"] = hasattr(environ["wsgi.input"], "read")
    out["has_errors_write"] = hasattr(environ["wsgi.errors"], "write")
    out["has_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    out["pid"] = os.getpid()
    out["uid"] = os.getuid()
    out["os.environ"] = {k: os.environ.get(k) for k in ("APP_MODE", "DATABASE_URL", "PATH", "LD_PRELOAD", "SSH_AUTH_SOCK")}
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
`;

// alice's password "wonderland" as MD5-crypt (`openssl passwd -apr1 -salt lodgesal wonderland`),
// a form every Apache checks right: 1.3's {SHA} is wrong on 64-bit hosts (its SHA-1
// takes `unsigned long` for 32 bits).
const ALICE = 'alice:$apr1$lodgesal$A2oYU3tRMSYryL3L2gEnv1';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      env: {
        '.htaccess': 'LodgeApp wsgi app.py\nLodgeEnv APP_MODE "staging area"\nLodgeEnv DATABASE_URL sqlite:///db.sqlite3\n',
        'app.py': APP,
      },
      nested: {
        'index.html': 'not an app here',
        'shop/.htaccess': 'LodgeApp wsgi app.py\n',
        'shop/app.py': APP,
        'private/.htaccess': 'LodgeApp wsgi app.py\nAuthType Basic\nAuthName "staff"\nAuthUserFile PLACEHOLDER\nRequire valid-user\n',
        'private/app.py': APP,
      },
    }, undefined, apache);
    // The password file's path depends on the temp folder; write it now.
    const fs = await import('node:fs');
    const dir = `${site.root}/nested/private`;
    fs.writeFileSync(`${dir}/.htpasswd`, `${ALICE}\n`);
    const ht = fs.readFileSync(`${dir}/.htaccess`, 'utf8').replace('PLACEHOLDER', `${dir}/.htpasswd`);
    fs.writeFileSync(`${dir}/.htaccess`, ht);
  });
  after(async () => site?.stop());

  test('the environ holds every CGI variable of PEP 3333 with the right value', async () => {
    const port = site.sb.port;
    const r = await site.get('env', '/a%20b/c?x=1&y=%2F', {
      headers: { 'X-Custom': 'one', 'Accept-Language': 'fr', Cookie: 'a=b', 'Content-Type': 'text/x-test' },
      body: 'abc',
      method: 'PUT',
    });
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text);
    assert.equal(e.REQUEST_METHOD, 'PUT');
    assert.equal(e.SCRIPT_NAME, '');
    assert.equal(e.PATH_INFO, '/a b/c');
    assert.equal(e.QUERY_STRING, 'x=1&y=%2F');
    assert.equal(e.REQUEST_URI, '/a%20b/c?x=1&y=%2F');
    assert.equal(e.CONTENT_TYPE, 'text/x-test');
    assert.equal(e.CONTENT_LENGTH, '3');
    assert.equal(e.SERVER_NAME, 'env.localhost');
    assert.equal(e.SERVER_PORT, String(port));
    assert.equal(e.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal(e.REMOTE_ADDR, '127.0.0.1');
    assert.match(e.REMOTE_PORT, /^\d+$/);
    assert.equal(e.HTTP_HOST, `env.localhost:${port}`);
    assert.equal(e.HTTP_X_CUSTOM, 'one');
    assert.equal(e.HTTP_ACCEPT_LANGUAGE, 'fr');
    assert.equal(e.HTTP_COOKIE, 'a=b');
    assert.equal(e.HTTP_CONTENT_TYPE, undefined);
    assert.equal(e.HTTP_CONTENT_LENGTH, undefined);
    assert.equal(e.REMOTE_USER, undefined);
    assert.equal(e.HTTPS, undefined);
    assert.equal(e['wsgi.url_scheme'], 'http');
    assert.deepEqual(e['wsgi.version'], [1, 0]);
    assert.equal(e['wsgi.multithread'], false);
    assert.equal(e['wsgi.multiprocess'], true);
    assert.equal(e['wsgi.run_once'], false);
    assert.equal(e.has_input_read, true);
    assert.equal(e.has_errors_write, true);
    assert.equal(e.has_file_wrapper, true);
    const env = e['os.environ'];
    assert.equal(env.APP_MODE, 'staging area', 'LodgeEnv with a quoted value');
    assert.equal(env.DATABASE_URL, 'sqlite:///db.sqlite3');
    assert.equal(env.PATH, '/usr/local/bin:/usr/bin:/bin');
    assert.equal(env.SSH_AUTH_SOCK, null, 'nothing of lodged\'s own environment leaks in');
    assert.equal(e.uid, site.users.env.uid, 'the worker runs as the owner of the app directory');
  });

  test('a chunked request has no CONTENT_LENGTH and a repeated header is joined', async () => {
    const r = await site.get('env', '/', { body: 'x'.repeat(1000), chunked: 100, headers: { 'X-Multi': 'a' } });
    const e = JSON.parse(r.text);
    assert.equal(e.CONTENT_LENGTH, undefined);
    assert.equal(e.HTTP_X_MULTI, 'a');
  });

  test('an app in a sub-folder gets its URL prefix as SCRIPT_NAME', async () => {
    const r = await site.get('nested', '/shop/cart/items?id=7');
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text);
    assert.equal(e.SCRIPT_NAME, '/shop');
    assert.equal(e.PATH_INFO, '/cart/items');
    assert.equal(e.QUERY_STRING, 'id=7');
    const root = JSON.parse((await site.get('nested', '/shop/')).text);
    assert.equal(root.SCRIPT_NAME, '/shop');
    assert.equal(root.PATH_INFO, '/');
    // Outside the app's folder, Apache serves the site as before.
    assert.equal((await site.get('nested', '/index.html')).text, 'not an app here');
  });

  test('REMOTE_USER and AUTH_TYPE come from Apache authentication', async () => {
    const denied = await site.get('nested', '/private/x');
    assert.equal(denied.status, 401);
    const auth = 'Basic ' + Buffer.from('alice:wonderland').toString('base64');
    const r = await site.get('nested', '/private/x', { headers: { Authorization: auth } });
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text);
    assert.equal(e.REMOTE_USER, 'alice');
    assert.equal(e.AUTH_TYPE, 'Basic');
    assert.equal(e.SCRIPT_NAME, '/private');
  });
});
