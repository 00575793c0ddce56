import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Site, eventually, startSite } from './helpers/site';
import { TestUser, createUser, processesOf, removeUser } from './helpers/users';

// Ownership is checked before every worker start, not only when lodged first sees an
// app: a directory that changed hands starts its next worker as the new owner (or not
// at all), never as the old one.

const APP = `
import json, os
def application(environ, start_response):
    if environ["PATH_INFO"] == "/exit":
        os._exit(1)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"uid": os.getuid()}).encode()]
`;

let site: Site;
let newOwner: TestUser;
before(async () => {
  site = await startSite({ moved: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP } });
  newOwner = createUser();
});
after(async () => {
  await site?.stop();
  if (newOwner) await removeUser(newOwner);
});

test('an app directory given to another user starts its next worker as that user, never as the old one', async () => {
  const old = site.users.moved;
  const dir = path.join(site.root, 'moved');
  const first = await site.get('moved', '/');
  assert.equal(JSON.parse(first.text).uid, old.uid);
  // The worker ends; lodged keeps the app (it was used a moment ago).
  await site.get('moved', '/exit');
  await eventually(() => processesOf(old.uid).length === 0, 'the old owner\'s worker is gone');
  execFileSync('chown', ['-R', `${newOwner.uid}:${newOwner.gid}`, dir]);
  const uids: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await site.get('moved', '/');
    if (r.status === 200) uids.push(JSON.parse(r.text).uid);
    else assert.equal(r.status, 500, r.text);
  }
  assert.ok(!uids.includes(old.uid), `a worker ran as the old owner after the chown (${uids.join(', ')})`);
  assert.ok(uids.includes(newOwner.uid), 'the app runs as its new owner');
  assert.deepEqual(processesOf(old.uid), []);
});

test('an app directory made writable by others since its pool started is refused at the next start', async () => {
  const dir = path.join(site.root, 'moved');
  await site.get('moved', '/exit');
  await eventually(() => processesOf(newOwner.uid).length === 0, 'the worker is gone');
  fs.chmodSync(dir, 0o777);
  try {
    const r = await site.get('moved', '/');
    assert.equal(r.status, 500);
    assert.match(site.lodgedLog(), /writable by group or others/);
    assert.deepEqual(processesOf(newOwner.uid), [], 'no worker started');
  } finally {
    fs.chmodSync(dir, 0o755);
  }
});
