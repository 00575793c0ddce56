import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { processesOf } from './helpers/users';
import { statusJson } from './helpers/status-json';

// The lifespan scope of an ASGI app: its startup runs in the worker before it takes a
// request, and a startup that fails is the tenant's clear 502 with the traceback in
// their log, as an import error is; an app that does not take the lifespan scope runs
// without it (ASGI); the shutdown runs when the worker leaves of its own accord.

const FAILING_STARTUP = `
from fastapi import FastAPI
app = FastAPI()

def connect():
    raise ConnectionError("database 7731 refused the connection")

@app.on_event("startup")
async def started():
    connect()

@app.get("/")
async def index():
    return "never"
`;

// A plain ASGI app that raises after it received lifespan.startup: a failed startup too.
const RAW_FAILING = `
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("raw startup broke 5512")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"never"})
`;

// An app that knows only HTTP: it raises at once on the lifespan scope.
const NO_LIFESPAN = `
import os
async def app(scope, receive, send):
    assert scope["type"] == "http", "only http here"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ("no lifespan, state=%s" % ("state" in scope)).encode()})
`;

// The lifespan's state reaches each request as a copy; the shutdown leaves a mark.
const STATEFUL = `
import os
HERE = os.path.dirname(os.path.abspath(__file__))
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                scope["state"]["pid"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                mark = os.path.join(HERE, "shutdown-%d" % os.getpid())
                with open(mark + ".tmp", "w") as f:
                    f.write("clean")
                os.rename(mark + ".tmp", mark)
                await send({"type": "lifespan.shutdown.complete"})
                return
    state = scope["state"]
    seen = state.get("added")
    state["added"] = True   # a request's change stays in its own copy
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ("%s %s" % (state["pid"], seen)).encode()})
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      failing: { '.htaccess': 'LodgeApp asgi main.py:app\n', 'main.py': FAILING_STARTUP },
      raw: { '.htaccess': 'LodgeApp asgi main.py\n', 'main.py': RAW_FAILING },
      plain: { '.htaccess': 'LodgeApp asgi main.py\n', 'main.py': NO_LIFESPAN },
      stateful: { '.htaccess': 'LodgeApp asgi main.py\nLodgeIdle 1\n', 'main.py': STATEFUL },
    }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a FastAPI startup hook that raises is a 502 for the visitor and a traceback in the tenant log', async () => {
    const r = await site.get('failing', '/');
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.text, /7731/, 'visitors do not see the traceback');
    assert.match(r.text, /failed to answer.*logs\/lodge\.log/s, 'the page tells the site owner where to look');
    await eventually(() => /ConnectionError: database 7731 refused the connection/.test(site.tenantLog('failing')), 'the traceback in the tenant log');
    const log = site.tenantLog('failing');
    assert.match(log, /Traceback/);
    assert.match(log, /main\.py", line 6, in connect/);
    await eventually(() => /main\.py line 6: ConnectionError: database 7731/.test(site.errorLog()), 'Apache\'s error log names the file, line and exception');
    // The status (and so the tenant's dashboard) has it as a start-failed event of that app.
    const root = path.join(site.root, 'failing');
    await eventually(() => statusJson(site).events.some((e) => e.kind === 'start-failed' && e.app === root && /ConnectionError: database 7731/.test(e.message)), 'a start-failed event naming the exception');
  });

  test('a plain ASGI app that raises in lifespan.startup fails its start the same way', async () => {
    const r = await site.get('raw', '/');
    assert.equal(r.status, 502);
    await eventually(() => /RuntimeError: raw startup broke 5512/.test(site.tenantLog('raw')), 'the traceback in the tenant log');
    assert.match(site.tenantLog('raw'), /main\.py", line 5, in app/);
  });

  test('an app that does not take the lifespan scope runs without it', async () => {
    const r = await site.get('plain', '/');
    assert.equal(r.status, 200, r.text + site.tenantLog('plain'));
    assert.equal(r.text, 'no lifespan, state=False');
    assert.match(site.tenantLog('plain'), /does not take the lifespan scope \(AssertionError: only http here\); running without it/);
  });

  test('each request gets a copy of the lifespan state; the shutdown runs when the idle worker leaves', async () => {
    const first = await site.get('stateful', '/');
    assert.equal(first.status, 200, first.text + site.tenantLog('stateful'));
    const [pid, seen] = first.text.split(' ');
    assert.equal(seen, 'None');
    assert.equal((await site.get('stateful', '/')).text, `${pid} None`, 'what a request added to its state is not seen by the next');
    // LodgeIdle 1: lodged lets the idle worker go, which runs the app's shutdown first.
    const mark = path.join(site.root, 'stateful', `shutdown-${pid}`);
    await eventually(() => fs.existsSync(mark), 'the shutdown wrote its mark', 20_000);
    assert.equal(fs.readFileSync(mark, 'utf8'), 'clean');
    await eventually(() => !processesOf(site.users.stateful.uid).includes(Number(pid)), 'the worker is gone');
  });
});
