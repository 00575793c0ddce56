import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// lodged.json `direct: true` with an ASGI app of LodgeConcurrency 1 (a worker with more
// lanes stays on lodged's path): its workers accept on the app's own socket as WSGI
// workers do (they wait for it in their event loop), so once routed, requests and their
// bodies are served while lodged is stopped. A task the app started keeps
// running between requests, since an idle worker waits in its loop.

const MAIN = `
import asyncio, os

ticks = 0
TICKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ticks")

async def ticker():
    global ticks
    while True:
        ticks += 1
        with open(TICKS, "w") as f:
            f.write(str(ticks))
        await asyncio.sleep(0.05)

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                scope["state"]["task"] = asyncio.get_running_loop().create_task(ticker())
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    size, more = 0, True
    while more:
        m = await receive()
        size += len(m.get("body", b""))
        more = m.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ("%d %d %d" % (os.getpid(), size, ticks)).encode()})
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ dir: { '.htaccess': 'LodgeApp asgi main.py\nLodgeProcesses 1\nLodgeConcurrency 1\n', 'main.py': MAIN } }, { direct: true }, apache);
  });
  after(async () => site?.stop());

  test('routed to the app\'s socket, an ASGI worker serves while lodged is stopped, bodies included; its own task runs between requests', async () => {
    // One kept-alive connection: one Apache process, which remembers the route.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await site.get('dir', '/', { agent })).status, 200);
      const lodged = site.sb.lodged.pid!;
      process.kill(lodged, 'SIGSTOP');
      let first: number[];
      try {
        const r = await site.get('dir', '/', { agent });
        assert.equal(r.status, 200, r.text);
        first = r.text.split(' ').map(Number);
        const body = Buffer.alloc(1 << 20, 0x61);
        const up = await site.get('dir', '/up', { agent, body });
        assert.equal(up.status, 200, up.text);
        assert.equal(up.text.split(' ')[1], String(body.length), 'the whole body reached the app');
      } finally {
        process.kill(lodged, 'SIGCONT');
      }
      // The ticker (every 50 ms) runs while the worker is idle: with no request at all,
      // the count it writes goes on rising (run only during requests, it would stand still).
      const start = (await site.get('dir', '/', { agent })).text.split(' ').map(Number);
      const ticksNow = () => Number(fs.readFileSync(path.join(site.root, 'dir', 'ticks'), 'utf8') || '0');
      await eventually(() => ticksNow() >= start[2] + 10, "the app's task runs while no request comes");
      const end = (await site.get('dir', '/', { agent })).text.split(' ').map(Number);
      assert.equal(end[0], first[0], 'the same worker ran it');
    } finally {
      agent.destroy();
    }
  });
});
