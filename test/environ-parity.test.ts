import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApacheVersion } from '../sidecar/src/sandbox/sandbox';
import { ModWsgiServer, startModWsgi } from './helpers/mod-wsgi';
import { RawCase, RawReply, loadCorpus, sendRaw } from './helpers/raw-corpus';
import { Site, apacheVersions, forEachApache, startSite } from './helpers/site';

// A tenant moving from mod_wsgi finds the same environ: every request of the corpus
// goes, byte for byte, to mod_wsgi in daemon mode and to the same app as a Lodge
// tenant, on the same files, and the two environs are compared key by key.

// The app dumps its environ: strings as they are, tuples as lists, objects (streams,
// file_wrapper) only as being there; and the body it read.
const APP = `
import json
def application(environ, start_response):
    env = {}
    for k, v in environ.items():
        if v is None or isinstance(v, (str, bool, int, float)):
            env[k] = v
        elif isinstance(v, tuple):
            env[k] = list(v)
        else:
            env[k] = "<object>"
    body = environ["wsgi.input"].read().decode("latin-1")
    out = json.dumps({"environ": env, "body": body}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]
`;

// alice's password "wonderland" (`openssl passwd -apr1 -salt lodgesal wonderland`).
const ALICE = 'alice:$apr1$lodgesal$A2oYU3tRMSYryL3L2gEnv1';
// A folder's SetEnv reaches the app; one that names what Apache itself sets does not
// (REMOTE_USER comes only from Apache's authentication, wsgi.* only from the runtime).
const SETENV = ['SetEnv PARITY_SETENV "from the folder"', 'SetEnv REMOTE_USER mallory', 'SetEnv wsgi.url_scheme https'];
const AUTH = (file: string) => ['AuthType Basic', 'AuthName "staff"', `AuthUserFile "${file}"`, 'Require valid-user'];

/**
 * Keys mod_wsgi gives that Lodge does not, on purpose. Everything else must be in
 * both, with the same value (REMOTE_PORT: both a port, each its own connection's).
 */
const DIFFERENT: Array<[RegExp, string, RegExp?]> = [
  [/^mod_wsgi\./, "mod_wsgi's own: its process group, application group, request id and timings; Lodge has none of these (its status page shows the workers and requests)"],
  [/^apache\.version$/, 'the Apache mod_wsgi was built for; a Lodge app runs apart from Apache, on 2.4 and 1.3 alike'],
  [/^REMOTE_USER$/, "mod_wsgi takes a REMOTE_USER from SetEnv where Apache authenticated no one; Lodge only Apache's user, so that a line of .htaccess cannot pose as a login (only this made-up value is let differ)", /^mallory$/],
  [/^PATH_TRANSLATED$/, 'Apache computes it with a sub-request per request that maps PATH_INFO to a file (mod_wsgi shows the script\'s path with PATH_INFO behind it, a file that is not there); a CGI relic no WSGI app reads, not worth a sub-request on every request'],
];

const used = new Set<RegExp>();
const whyDifferent = (key: string, value: unknown) => {
  const hit = DIFFERENT.find(([re, , v]) => re.test(key) && (v === undefined || v.test(String(value))));
  if (hit) used.add(hit[0]);
  return hit?.[1];
};

/** Facts beyond parity that each case pins down in Lodge's environ itself. */
const CHECKS: Record<string, (e: Record<string, unknown>) => void> = {
  '01-get-query': (e) => {
    assert.equal(e.GATEWAY_INTERFACE, 'CGI/1.1');
    assert.equal(e.REQUEST_SCHEME, 'http');
    assert.equal(e.SERVER_ADDR, '127.0.0.1');
    assert.equal(e.PARITY_SETENV, 'from the folder', "the folder's SetEnv reaches the app");
    assert.equal(e.REMOTE_USER, undefined, 'SetEnv REMOTE_USER is no login');
    assert.equal(e['wsgi.url_scheme'], 'http', 'SetEnv wsgi.url_scheme is not the runtime\'s');
  },
  '10-header-underscore': (e) => assert.equal(e.HTTP_X_USER, 'alice'),
  '15-authorization-app': (e) => assert.equal(e.HTTP_AUTHORIZATION, 'Bearer token-for-the-app', 'Apache did not authenticate: the credentials are the app\'s'),
  '16-proxy-credentials': (e) => {
    assert.equal(e.HTTP_PROXY_AUTHORIZATION, undefined, 'Proxy-Authorization is never the app\'s');
    assert.equal(e.HTTP_PROXY, undefined);
  },
  '17-apache-authenticated': (e) => {
    assert.equal(e.REMOTE_USER, 'alice');
    assert.equal(e.AUTH_TYPE, 'Basic');
    assert.equal(e.HTTP_AUTHORIZATION, undefined, 'Apache checked the password: it stays with Apache');
  },
  '19-subfolder': (e) => {
    assert.equal(e.SCRIPT_NAME, '/shop');
    assert.equal(e.PATH_INFO, '/cart/items');
  },
};

interface Seen {
  status: number;
  environ?: Record<string, unknown>;
  body?: string;
}

/** A reply made comparable across servers: the site's root, port and client port named, not given. */
function seen(reply: RawReply, root: string, port: number): Seen {
  if (reply.status !== 200) return { status: reply.status };
  const { environ, body } = JSON.parse(reply.body.toString('utf8')) as { environ: Record<string, unknown>; body: string };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(environ)) {
    if (k === 'REMOTE_PORT') {
      assert.match(String(v), /^\d+$/, 'REMOTE_PORT is a port');
      out[k] = '(a port)';
    } else {
      out[k] = typeof v === 'string' ? v.replaceAll(root, '$ROOT').replaceAll(String(port), '$PORT') : v;
    }
  }
  return { status: reply.status, environ: out, body };
}

const CORPUS: RawCase[] = loadCorpus(path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'environ-requests'));
const lodgeSeen: Partial<Record<ApacheVersion, Record<string, Seen>>> = {};

forEachApache((apache) => {
  let site: Site;
  let wsgi: ModWsgiServer;
  const mine: Record<string, Seen> = (lodgeSeen[apache] = {});
  before(async () => {
    site = await startSite({
      env: { '.htaccess': `LodgeApp wsgi app.py\n${SETENV.join('\n')}\n`, 'app.py': APP },
      nested: {
        'shop/.htaccess': 'LodgeApp wsgi app.py\n',
        'shop/app.py': APP,
        'private/.htaccess': 'LodgeApp wsgi app.py\nPLACEHOLDER\n',
        'private/app.py': APP,
      },
    }, undefined, apache);
    const root = fs.realpathSync(site.root);
    const priv = path.join(root, 'nested', 'private');
    fs.writeFileSync(path.join(priv, '.htpasswd'), `${ALICE}\n`);
    const ht = path.join(priv, '.htaccess');
    fs.writeFileSync(ht, fs.readFileSync(ht, 'utf8').replace('PLACEHOLDER', AUTH(path.join(priv, '.htpasswd')).join('\n')));
    // The mod_wsgi host that passes Authorization to apps with their own login
    // (WSGIPassAuthorization On) and keeps it where Apache authenticates (its default).
    wsgi = await startModWsgi([
      { name: 'env.localhost', documentRoot: path.join(root, 'env'), mounts: [
        { url: '/', script: path.join(root, 'env', 'app.py'), directives: ['Require all granted', 'WSGIPassAuthorization On', ...SETENV] },
      ] },
      { name: 'nested.localhost', documentRoot: path.join(root, 'nested'), mounts: [
        { url: '/shop', script: path.join(root, 'nested', 'shop', 'app.py'), directives: ['Require all granted', 'WSGIPassAuthorization On'] },
        { url: '/private', script: path.join(priv, 'app.py'), directives: AUTH(path.join(priv, '.htpasswd')) },
      ] },
    ]);
  });
  after(async () => {
    await wsgi?.stop();
    await site?.stop();
  });

  for (const c of CORPUS) {
    test(`${c.name}: ${c.about}`, async () => {
      const root = fs.realpathSync(site.root);
      const ref = seen(await sendRaw(wsgi.port, c.bytes(wsgi.port)), root, wsgi.port);
      const got = seen(await sendRaw(site.sb.port, c.bytes(site.sb.port)), root, site.sb.port);
      mine[c.name] = got;
      assert.equal(got.status, ref.status, `status: Lodge ${got.status}, mod_wsgi ${ref.status}`);
      if (ref.environ === undefined || got.environ === undefined) return;
      assert.equal(got.body, ref.body, 'the body the app read');
      const missing: string[] = [];
      const extra: string[] = [];
      const unequal: string[] = [];
      for (const [k, v] of Object.entries(ref.environ)) {
        if (whyDifferent(k, v)) continue;
        if (!(k in got.environ)) missing.push(`${k}=${JSON.stringify(v)}`);
        else if (JSON.stringify(got.environ[k]) !== JSON.stringify(v)) unequal.push(`${k}: Lodge ${JSON.stringify(got.environ[k])}, mod_wsgi ${JSON.stringify(v)}`);
      }
      for (const k of Object.keys(got.environ)) if (!(k in ref.environ)) extra.push(`${k}=${JSON.stringify(got.environ[k])}`);
      assert.deepEqual({ missing, extra, unequal }, { missing: [], extra: [], unequal: [] }, 'Lodge\'s environ against mod_wsgi\'s');
      CHECKS[c.name]?.(got.environ);
    });
  }
});

if (apacheVersions().includes('1.3')) {
  test('Apache 1.3 gives the same environ as Apache 2.4 for every request of the corpus', () => {
    const a = lodgeSeen['2.4'] ?? {};
    const b = lodgeSeen['1.3'] ?? {};
    assert.equal(Object.keys(b).length, CORPUS.length, 'every case ran on 1.3');
    for (const c of CORPUS) assert.deepEqual(b[c.name], a[c.name], c.name);
  });
}

test('every entry of the allow-list still names a key mod_wsgi gives', () => {
  for (const [re] of DIFFERENT) assert.ok(used.has(re), `${re} matched no key: drop it`);
});
