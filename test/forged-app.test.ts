import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { asWebUser, body, frame, pairs } from './helpers/web-user-frames';

// Anything that runs as the web server's user (mod_php, a CGI without suEXEC) can
// reach lodged's socket as mod_lodge does. lodged runs only what the app directory's
// own file declares: a forged APP frame naming another file of the tenant's, or an
// environment of its choosing, runs the declared app with the declared LodgeEnv.

const APP = `
import json, os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"file": "app.py", "mode": os.environ.get("MODE"), "pid": os.getpid()}).encode()]
`;
// A script of the tenant's that is no app: run as one, it would say so.
const ADMIN = `
def application(environ, start_response):
    start_response("200 OK", [])
    return [b"ADMIN SCRIPT RAN"]
`;

let site: Site;
before(async () => {
  site = await startSite({
    victim: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeEnv MODE safe\n', 'app.py': APP, 'admin.py': ADMIN },
    other: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 20\n', 'app.py': APP, 'sub/.htaccess': 'LodgeTimeout 5\nLodgeEnv MODE sub\n' },
  });
});
after(async () => site?.stop());

test('a forged APP frame from the web server\'s user naming another file and environment runs only the declared app, as declared', async () => {
  const root = path.join(site.root, 'victim');
  const app = frame(0x01, pairs([
    ['root', root], ['kind', 'wsgi'], ['entry', 'admin.py'], ['callable', ''],
    ['config', `${root}/.htaccess`], ['env.MODE', 'evil'], ['env.EXTRA', 'x'],
  ]));
  const req = frame(0x02, pairs([['REQUEST_METHOD', 'GET'], ['PATH_INFO', '/'], ['SCRIPT_NAME', ''], ['SERVER_NAME', 'victim.localhost'], ['SERVER_PORT', '80'], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['wsgi.url_scheme', 'http']]));
  const reply = body(await asWebUser(site.sb.socket, Buffer.concat([app, req, frame(0x04, Buffer.alloc(0))])));
  assert.doesNotMatch(reply, /ADMIN SCRIPT RAN/, 'the undeclared script never runs as an app');
  const got = JSON.parse(reply);
  assert.equal(got.file, 'app.py');
  assert.equal(got.mode, 'safe', 'the LodgeEnv of the file, not of the frame');
  await eventually(() => /the file declares app\.py; running what the file declares/.test(site.lodgedLog()), 'lodged notes the forged frame');
  // The tenant's own requests are served by the same workers.
  const r = await site.get('victim', '/');
  assert.equal(JSON.parse(r.text).mode, 'safe');
});

test('a forged APP frame pointing at a directory whose file declares no app is refused', async () => {
  const root = path.join(site.root, 'victim');
  fs.mkdirSync(path.join(root, 'plain'), { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'plain', 'x.py'), ADMIN);
  const u = site.users.victim;
  fs.chownSync(path.join(root, 'plain'), u.uid, u.gid);
  fs.chownSync(path.join(root, 'plain', 'x.py'), u.uid, u.gid);
  const app = frame(0x01, pairs([['root', `${root}/plain`], ['kind', 'wsgi'], ['entry', 'x.py'], ['callable', '']]));
  const req = frame(0x02, pairs([['REQUEST_METHOD', 'GET'], ['PATH_INFO', '/']]));
  const reply = body(await asWebUser(site.sb.socket, Buffer.concat([app, req, frame(0x04, Buffer.alloc(0))])));
  assert.equal(reply, 'ERROR 500');
  assert.match(site.lodgedLog(), /plain\/\.htaccess cannot be read: ENOENT/);
});

test('a sub-folder with Lodge lines of its own shares the app\'s pool: alternate requests keep one worker', async () => {
  const pids = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const r = await site.get('other', i % 2 ? '/sub/x' : '/');
    assert.equal(r.status, 200, r.text);
    const got = JSON.parse(r.text);
    assert.equal(got.mode, null, 'the sub-folder\'s LodgeEnv is not the app\'s');
    pids.add(got.pid);
  }
  assert.equal(pids.size, 1, `one worker served both folders, not a fresh Python each time (${[...pids].join(', ')})`);
  assert.doesNotMatch(site.lodgedLog(), /changed: .* restarts with the new settings/);
});
