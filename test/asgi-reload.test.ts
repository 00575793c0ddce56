import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// An ASGI app is reloaded as a WSGI app is: an edit of main.py, or of a module it
// imports, is live on a later request, with no request failed meanwhile (old workers
// finish what they hold, new ones take the rest).

const main = (version: string) => `
import os
from helper import extra

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ("%s %s %d" % ("${version}", extra(), os.getpid())).encode()})
`;
const helper = (v: string) => `def extra():\n    return "${v}"\n`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

forEachApache((apache) => {
  let site: Site;
  let dir: string;
  before(async () => {
    site = await startSite({ rl: { '.htaccess': 'LodgeApp asgi main.py:app\nLodgeProcesses 2\n', 'main.py': main('v0'), 'helper.py': helper('h0') } }, undefined, apache);
    dir = path.join(site.root, 'rl');
  });
  after(async () => site?.stop());

  /** Requests one after another until stop() is called; every reply is kept. */
  function clientLoop() {
    const replies: Array<{ status: number; text: string }> = [];
    let running = true;
    const done = (async () => {
      while (running) {
        try {
          const r = await site.get('rl', '/');
          replies.push({ status: r.status, text: r.text });
        } catch (err) {
          replies.push({ status: 0, text: String(err) });
        }
      }
    })();
    return { replies, stop: async () => { running = false; await done; } };
  }

  test('ten edits of main.py under load: no request fails, and the last edit is what serves', async () => {
    const loop = clientLoop();
    await eventually(() => loop.replies.length > 5, 'the loop is running');
    for (let i = 1; i <= 10; i++) {
      fs.writeFileSync(path.join(dir, 'main.py'), main(`v${i}`));
      await sleep(1300);
    }
    await eventually(() => /^v10 /.test(loop.replies.at(-1)?.text ?? ''), 'the last edit is live');
    await loop.stop();
    assert.deepEqual(loop.replies.filter((r) => r.status !== 200), [], 'no failed request during ten reloads');
    const versions = new Set(loop.replies.map((r) => r.text.split(' ')[0]));
    assert.ok(versions.size > 2, `several versions served in turn: ${[...versions].join(' ')}`);
  });

  test('an edit of a module main.py imports is picked up too', async () => {
    fs.writeFileSync(path.join(dir, 'helper.py'), helper('h1'));
    await eventually(async () => / h1 /.test((await site.get('rl', '/')).text), 'helper.py edit live');
  });
});
