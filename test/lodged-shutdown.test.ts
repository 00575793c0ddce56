import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { processesOf } from './helpers/users';

const APP = `
import os, time
HERE = os.path.dirname(os.path.abspath(__file__))
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        open(os.path.join(HERE, "started"), "w").close()
        while not os.path.exists(os.path.join(HERE, "release")):
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done " + environ["PATH_INFO"].encode()]
`;

let site: Site;
before(async () => {
  site = await startSite({ gs: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP } }, undefined, '2.4', { daemon: 'sandbox' });
});
after(async () => site?.stop());

test('SIGTERM to lodged lets the request in flight finish, turns new ones away, then stops every worker', async () => {
  const dir = path.join(site.root, 'gs');
  const slow = site.get('gs', '/slow');
  await eventually(() => fs.existsSync(path.join(dir, 'started')), 'the slow request is running');
  const lodged = site.sb.lodged.child!;
  const exited = new Promise<void>((resolve) => lodged.once('exit', () => resolve()));
  lodged.kill('SIGTERM');
  await eventually(() => /SIGTERM: finishing 1 request/.test(site.lodgedLog()), 'lodged says it is finishing');
  const meanwhile = await site.get('gs', '/other');
  assert.equal(meanwhile.status, 503, 'a new request during shutdown is turned away');
  assert.equal(lodged.exitCode, null, 'lodged waits for the request in flight');
  fs.writeFileSync(path.join(dir, 'release'), '');
  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.text, 'done /slow');
  await exited;
  await eventually(() => processesOf(site.users.gs.uid).length === 0, 'no worker outlives lodged');
});
