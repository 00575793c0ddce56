import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { oneConnection } from './helpers/one-connection';
import { callsDuring } from './helpers/strace';

// A bodyless request sent straight to the app's socket carries a ticket in its REQ
// header, and the worker sends ACCEPTED in the same write as its answer's first frame:
// Apache wakes once for the answer, not once for ACCEPTED and again for the answer.
// What ACCEPTED told mod_lodge before then is had otherwise: a request the worker read
// and then lost is not sent again (end of file, not a reset, or the accept check's
// SIOCOUTQ), and lodged finds its worker by the ticket on the app's scoreboard.

const APP = `
import os, time
RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")
def application(environ, start_response):
    p = environ["PATH_INFO"]
    if p in ("/crash", "/slow", "/hang"):
        with open(RUNS, "a") as f:
            f.write(p + "\\n")
    if p == "/crash":
        os._exit(7)
    if p == "/slow":
        time.sleep(1.5)  # past mod_lodge's one-second accept check, under LodgeTimeout 3
    if p == "/hang":
        time.sleep(60)
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %d" % (os.getpid(), len(body))).encode()]
`;

// An ACCEPTED frame as strace shows the start of a write: type 0x16, then a 4-byte length.
const ACCEPTED = String.raw`"\26\0\0\0\0\0\0\4`;

forEachApache((apache) => {
  let site: Site;
  const runs = (what: string) => {
    const file = path.join(site.root, 'alpha', 'runs.log');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l === what).length : 0;
  };

  before(async () => {
    site = await startSite({ alpha: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\nLodgeTimeout 3\n', 'app.py': APP } }, { direct: true }, apache);
  });
  after(async () => {
    await site?.stop();
  });

  test('a bodyless request gets ACCEPTED in the same write as its answer; a request with a body gets it first, alone', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      let pid = 0;
      for (let i = 0; i < 3; i++) {
        const r = await c.send('/');
        assert.equal(r.status, 200, r.text);
        pid = Number(r.text.split(' ')[0]);
      }
      const lines = await callsDuring([pid], 'write,writev,sendto,sendmsg', async () => {
        for (let i = 0; i < 10; i++) {
          const r = await c.send('/');
          assert.equal(r.status, 200, r.text);
          assert.equal(Number(r.text.split(' ')[0]), pid, 'the same worker');
        }
        const up = await c.send('/up', Buffer.alloc(1000, 0x61));
        assert.equal(up.status, 200, up.text);
        assert.equal(up.text, `${pid} 1000`);
      });
      const accepted = lines.filter((l) => l.includes(ACCEPTED));
      const alone = accepted.filter((l) => / = 12$/.test(l));
      assert.equal(accepted.length, 11, `an ACCEPTED for each request:\n${lines.join('\n')}`);
      assert.equal(alone.length, 1, `only the request with a body has ACCEPTED as a write of its own:\n${accepted.join('\n')}`);
    } finally {
      c.close();
    }
  });

  test('a worker that read a bodyless request and went before answering: 502 with lodged\'s reason, found by the ticket, and the request runs once', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      const r = await c.send('/crash');
      assert.equal(r.status, 502, r.text);
      assert.equal(runs('/crash'), 1, 'not sent again to another worker');
      assert.match(site.errorLog(), /exited with status 7 during the request/, 'Apache\'s log has lodged\'s reason');
      assert.doesNotMatch(site.errorLog(), /holds ticket/, 'lodged found the worker by its ticket');
      for (let i = 0; i < 3; i++) assert.equal((await c.send('/')).status, 200, 'the app serves on');
    } finally {
      c.close();
    }
  });

  test('a request held past the accept check is the worker\'s: served once when slow, 504 and its worker stopped when stuck', async () => {
    const c = oneConnection(site, 'alpha');
    try {
      let pid = '';
      for (let i = 0; i < 2; i++) {
        const r = await c.send('/');
        assert.equal(r.status, 200);
        pid = r.text.split(' ')[0];
      }
      const slow = await c.send('/slow');
      assert.equal(slow.status, 200, slow.text);
      assert.equal(runs('/slow'), 1, 'not sent again after the accept check');
      const before = site.lodgedLog().length;
      const hang = await c.send('/hang');
      assert.equal(hang.status, 504, hang.text);
      assert.equal(runs('/hang'), 1);
      // mod_lodge does not wait for lodged's word on a TIMEOUT: the kill comes after the 504.
      await eventually(() => /request made no progress for LodgeTimeout 3 s; killed/.test(site.lodgedLog().slice(before)), 'lodged stopped the worker the ticket named, at mod_lodge\'s verdict');
      const next = await c.send('/');
      assert.equal(next.status, 200);
      assert.notEqual(next.text.split(' ')[0], pid, 'a new worker');
    } finally {
      c.close();
    }
  });
});
