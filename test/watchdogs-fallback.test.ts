import { describe, after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, startSite } from './helpers/site';
import { processesOf } from './helpers/users';

// The watchdogs where the kernel offers less: cgroup v1 alone (no v2 cgroup.kill: the
// worker's tree is killed from its v1 pids group's list), and no cgroups at all
// (rlimits, process groups and sampling). Each says so in lodged's log.

const APP = `
import os, time
def forever():
    while True:
        time.sleep(1000)

def application(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/setsid":
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                forever()
            os._exit(0)
        os.waitpid(pid, 0)
    elif p == "/fork-bomb":
        while True:
            try:
                os.fork()
            except OSError:
                pass
    elif p == "/slow-memory-bomb":
        hog = []
        while True:
            hog.append(b"\\1" * (8 << 20))
            time.sleep(0.05)
    elif p == "/loop":
        while True:
            pass
    elif p == "/exit":
        os._exit(3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
`;

const TENANT = { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 5\nLodgeMemory 64M\nLodgeCPU 1\nLodgeProcesses 1\n', 'app.py': APP };

describe('cgroup v1 only', () => {
  let site: Site;
  before(async () => {
    site = await startSite({ a: TENANT }, { cgroups: 'v1', limits: { tasks: 48 } });
  });
  after(async () => site?.stop());
  const gone = () => eventually(() => processesOf(site.users.a.uid).length === 0, 'nothing of the tenant is left');

  test('the enforcement line names v1 for the tree', async () => {
    assert.equal((await site.get('a', '/')).status, 200);
    assert.match(site.lodgedLog(), /watchdogs: .*orphans: cgroup v1 pids/);
  });

  test('a setsid() grandchild dies with its worker', async () => {
    assert.equal((await site.get('a', '/setsid')).status, 200);
    assert.ok(processesOf(site.users.a.uid).length >= 2, 'the grandchild runs beside its worker');
    assert.equal((await site.get('a', '/exit')).status, 502);
    await gone();
    assert.equal((await site.get('a', '/')).status, 200);
  });

  test('a fork bomb is stopped with its whole tree', async () => {
    assert.equal((await site.get('a', '/fork-bomb')).status, 504);
    await gone();
    assert.equal((await site.get('a', '/')).status, 200);
  });
});

describe('no cgroups', () => {
  let site: Site;
  before(async () => {
    site = await startSite({ a: TENANT }, { cgroups: 'off' });
  });
  after(async () => site?.stop());

  test('the enforcement line says what is missing', async () => {
    assert.equal((await site.get('a', '/')).status, 200);
    const line = /watchdogs: (.*)/.exec(site.lodgedLog())?.[1] ?? '';
    assert.match(line, /memory: sampled .* RLIMIT_AS backstop/);
    assert.match(line, /tasks: RLIMIT_NPROC/);
    assert.match(line, /orphans: process group only/);
    assert.match(line, /cgroups: off/);
  });

  test('memory far over LodgeMemory is caught by sampling (502)', async () => {
    assert.equal((await site.get('a', '/slow-memory-bomb')).status, 502);
    assert.match(site.tenantLog('a'), /stopped for memory: it used \d+ MiB, far over LodgeMemory 64 MiB/);
    assert.equal((await site.get('a', '/')).status, 200);
  });

  test('LodgeCPU is measured from /proc (504)', async () => {
    assert.equal((await site.get('a', '/loop')).status, 504);
    assert.match(site.tenantLog('a'), /request used more than LodgeCPU 1 s/);
    assert.equal((await site.get('a', '/')).status, 200);
  });
});
