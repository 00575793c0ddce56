import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { oneConnection, servedAtOnce } from './helpers/one-connection';

// lodged.json `direct: true` with an ASGI app of LodgeConcurrency 1: its workers accept
// on the app's own socket as WSGI workers do (they wait for it in their event loop), so
// once routed, requests and their bodies are served while lodged is stopped. A task the
// app started keeps running between requests, since an idle worker waits in its loop.
// With more lanes a worker accepts several connections at once, up to its lanes, and a
// request past LodgeTimeout there is cancelled alone.

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

const MANY = `
import asyncio, os

held = most = 0

async def app(scope, receive, send):
    global held, most
    if scope["type"] != "http":
        return
    if scope["path"] == "/hang":
        await asyncio.sleep(3600)
    if scope["path"] == "/slow":
        held += 1
        most = max(most, held)
        await asyncio.sleep(0.6)
        held -= 1
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ("%d %d" % (os.getpid(), most)).encode()})
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      dir: { '.htaccess': 'LodgeApp asgi main.py\nLodgeProcesses 1\nLodgeConcurrency 1\n', 'main.py': MAIN },
      many: { '.htaccess': 'LodgeApp asgi main.py\nLodgeProcesses 1\nLodgeConcurrency 4\nLodgeTimeout 2\n', 'main.py': MANY },
    }, { direct: true }, apache);
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

  test('with LodgeConcurrency 4 one worker takes several connections from the app\'s socket at once while lodged is stopped; one past LodgeTimeout is 504 and cancelled alone', async () => {
    const conns = [0, 1, 2].map(() => oneConnection(site, 'many'));
    try {
      for (const c of conns) for (let i = 0; i < 2; i++) assert.equal((await c.send('/')).status, 200);
      const pid = (await conns[0].send('/')).text.split(' ')[0];
      const lodged = site.sb.lodged.pid!;
      process.kill(lodged, 'SIGSTOP');
      try {
        await servedAtOnce(conns, '/slow', pid);
      } finally {
        process.kill(lodged, 'SIGCONT');
      }
      const hang = conns[0].send('/hang');
      await new Promise((r) => setTimeout(r, 1600));
      const beside = await conns[1].send('/slow');
      assert.equal((await hang).status, 504);
      assert.equal(beside.status, 200, 'the request beside it was answered');
      // Past ABORT_GRACE (5 s) the same worker serves: the request was cancelled, the worker not killed.
      await new Promise((r) => setTimeout(r, 6000));
      const after = await conns[2].send('/');
      assert.equal(after.status, 200);
      assert.equal(after.text.split(' ')[0], pid, 'the same worker');
    } finally {
      for (const c of conns) c.close();
    }
  });
});
