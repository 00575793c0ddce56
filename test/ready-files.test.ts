import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { LODGE_FRAMES_PY, PID_APP } from './helpers/raw-frames';

// A worker's READY lists the files lodged watches for edits; the worker is the
// tenant's, so the list is hostile input. These tenants write their own READY on fd 3.

/** 400,000 files, packed just under the 16 MiB frame limit (short names in a short folder). */
const HUGE_READY = `
import os, lodgeframes as lf
root = os.getcwd()
lf.ready(['%s/%s' % (root, format(i, 'x')) for i in range(400000)])
lf.serve_forever(lambda: b'spam')
`;

/** Its own module, paths out of its folder (.., absolute, a symbolic link), and 30,000 more. */
const WIDE_READY = `
import os, lodgeframes as lf
root = os.getcwd()
lf.ready([root + '/mod.py', root + '/../outside.txt', root + '/link.py', '/etc/hostname']
         + ['m%d.py' % i for i in range(30000)])
lf.serve_forever(lambda: str(os.getpid()).encode())
`;

let site: Site;
before(async () => {
  site = await startSite({
    s: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': HUGE_READY, 'lodgeframes.py': LODGE_FRAMES_PY },
    wide: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': WIDE_READY, 'lodgeframes.py': LODGE_FRAMES_PY, 'mod.py': '' },
    n: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': PID_APP },
  });
  fs.writeFileSync(path.join(site.root, 'outside.txt'), 'the host\'s');
  fs.writeFileSync(path.join(site.root, 'outside2.txt'), 'the host\'s');
  fs.symlinkSync(path.join(site.root, 'outside2.txt'), path.join(site.root, 'wide', 'link.py'));
});
after(async () => site?.stop());

/** Requests to `tenant` one after another for `ms`; how many were answered 200. */
async function answered(tenant: string, ms: number): Promise<number> {
  const until = Date.now() + ms;
  let n = 0;
  while (Date.now() < until) if ((await site.get(tenant, '/', { timeoutMs: 30_000 })).status === 200) n++;
  return n;
}

test('a READY of 400,000 files costs its tenant, not a neighbour: the neighbour answers as often as without it', async () => {
  assert.equal((await site.get('n', '/')).status, 200);
  const alone = await answered('n', 2000);
  // Its first request: answered once lodged has taken (or refused) the READY.
  await site.get('s', '/', { timeoutMs: 60_000 });
  // The tenant's requests, each of which would have lodged look at its files.
  let spamming = true;
  const spam = (async () => {
    while (spamming) await site.get('s', '/', { timeoutMs: 30_000 });
  })();
  const beside = await answered('n', 2000);
  spamming = false;
  await spam;
  assert.ok(beside * 3 >= alone, `the neighbour answered ${beside} requests in 2 s beside it, ${alone} alone`);
  assert.match(site.lodgedLog(), /READY frame of \d+ bytes is over the 1048576-byte limit/);
  assert.notEqual((await site.get('s', '/')).status, 200, 'that tenant\'s app does not run');
});

test('files outside the app folder are not watched, its own are; past 2,000 the tenant is told once', async () => {
  const first = (await site.get('wide', '/')).text;
  assert.match(first, /^\d+$/);
  const pidAfter = async (what: string) => {
    // Several check intervals (500 ms) of requests: time for a reload, were one due.
    const seen = new Set<string>();
    for (let i = 0; i < 15; i++) {
      seen.add((await site.get('wide', '/')).text);
      await new Promise((r) => setTimeout(r, 150));
    }
    return [...seen].join(',') + ` (${what})`;
  };
  fs.utimesSync(path.join(site.root, 'outside.txt'), new Date(), new Date(Date.now() + 5000));
  assert.equal(await pidAfter('../outside.txt touched'), `${first} (../outside.txt touched)`, 'a host file behind .. does not reload the app');
  fs.utimesSync(path.join(site.root, 'outside2.txt'), new Date(), new Date(Date.now() + 5000));
  assert.equal(await pidAfter('outside2.txt touched'), `${first} (outside2.txt touched)`, 'nor one behind a symbolic link');
  // The app's own module is watched: an edit of it starts the new code.
  fs.utimesSync(path.join(site.root, 'wide', 'mod.py'), new Date(), new Date(Date.now() + 5000));
  await eventually(async () => (await site.get('wide', '/')).text !== first, 'an edit of mod.py reloads the app');
  const told = site.tenantLog('wide').match(/not watched: 2 outside the app directory, 28002 past the first 2000/g) ?? [];
  assert.equal(told.length, 1, `the tenant is told once:\n${site.tenantLog('wide')}`);
});
