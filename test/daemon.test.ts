import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { isAlive } from '../sidecar/src/sandbox/sandbox';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { processesOf } from './helpers/users';
import { clientLoop, descendsFrom, gracefulRestarts, parentOf, sleep, tally } from './helpers/load';

// LodgeDaemon on (the sandbox's default, as for a host that installs only the module):
// Apache starts lodged, starts it again when it dies, keeps it across a graceful
// restart, replaces it on a hard one, and takes it and its workers along when it stops.

const APP = `
import time
def application(environ, start_response):
    time.sleep(0.02)  # long enough that a crash of lodged catches requests in flight
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`;

const load = (site: Site) => clientLoop(site, 'app', Array.from({ length: 4 }, (_, i) => ({ name: `c${i}`, expect: 'ok' })));

forEachApache((apache) => {
  let site: Site;
  const lodgedPid = () => site.sb.lodged.pid!;
  const uid = () => site.users.app.uid;
  const starts = () => (site.errorLog().match(/LG00032: lodge: started lodged/g) ?? []).length;

  before(async () => {
    site = await startSite({ app: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 4\n', 'app.py': APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  test('Apache starts lodged as a child of its parent process, and the app answers', async () => {
    const pid = lodgedPid();
    assert.ok(isAlive(pid), `lodged (pid ${pid}) runs`);
    assert.equal(parentOf(pid), site.sb.apache.pid, 'lodged is the Apache parent\'s child');
    assert.match(site.errorLog(), new RegExp(`LG00032: lodge: started lodged \\(pid ${pid}\\): .*--socket ${site.sb.socket}`));
    const r = await site.get('app', '/');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok');
  });

  test('kill -9 of lodged under load: requests in flight get 502 or 503, new ones succeed again, the old workers exit', async (t) => {
    const old = lodgedPid();
    const loop = load(site);
    await eventually(() => loop.outcomes.filter((o) => o.status === 200).length >= 20, 'the app answers under load');
    const oldWorkers = processesOf(uid());
    assert.ok(oldWorkers.length > 0, 'lodged has workers');

    const killedAt = Date.now();
    process.kill(old, 'SIGKILL');
    await eventually(() => loop.outcomes.some((o) => o.start >= killedAt && o.status === 200), 'a request sent after the kill succeeds', 15_000);
    await sleep(500);
    const outcomes = await loop.stop();

    const recovered = Math.min(...outcomes.filter((o) => o.start >= killedAt && o.status === 200).map((o) => o.end));
    const during = outcomes.filter((o) => o.end >= killedAt && o.start < recovered);
    t.diagnostic(`Apache ${apache}: first success ${recovered - killedAt} ms after kill -9 of lodged; meanwhile ${tally(during)}`);
    for (const o of during) assert.ok([200, 502, 503].includes(o.status as number), `while lodged was down: ${o.status}`);
    const after = outcomes.filter((o) => o.start > recovered);
    assert.deepEqual(after.filter((o) => o.status !== 200), [], 'every request after the first success succeeds');

    const now = lodgedPid();
    assert.notEqual(now, old);
    assert.equal(parentOf(now), site.sb.apache.pid, 'Apache started the new lodged');
    assert.match(site.errorLog(), new RegExp(`LG00038: lodge: lodged \\(pid ${old}\\) .*9`));
    await eventually(() => oldWorkers.every((p) => !isAlive(p)), 'the old workers exit once their lodged is gone');
    await eventually(() => processesOf(uid()).every((p) => descendsFrom(p, now)), 'every process of the tenant belongs to the new lodged');
  });

  test('a graceful restart under load fails no request; lodged keeps its pid and its workers', async () => {
    await site.get('app', '/');
    const pid = lodgedPid();
    const startsBefore = starts();
    const loop = load(site);
    await eventually(() => loop.outcomes.length >= 20, 'the app answers under load');
    const workers = processesOf(uid());
    await gracefulRestarts(site, 2, 500);
    const outcomes = await loop.stop();
    assert.deepEqual(outcomes.filter((o) => o.status !== 200), [], `no failure among ${outcomes.length} requests`);
    assert.equal(lodgedPid(), pid, 'the same lodged');
    assert.ok(isAlive(pid));
    assert.equal(starts(), startsBefore, 'no lodged was started');
    assert.ok(workers.every(isAlive), 'its workers stay too');
  });

  test('apachectl restart replaces lodged: the old one and its workers are gone, the new one serves', async () => {
    await site.get('app', '/');
    const old = lodgedPid();
    const oldWorkers = processesOf(uid());
    site.sb.apachectl('restart');
    await eventually(() => lodgedPid() !== old && isAlive(lodgedPid()), 'a new lodged runs', 20_000);
    assert.ok(!isAlive(old), 'the old lodged is gone');
    assert.match(site.errorLog(), new RegExp(`LG00036: lodge: lodged \\(pid ${old}\\) stopped: it exited with status 0`));
    const r = await site.get('app', '/');
    assert.equal(r.status, 200);
    await eventually(() => oldWorkers.every((p) => !isAlive(p)), 'the old workers are gone');
  });

  test('a lodged that keeps dying young is started again after growing waits, not in a loop', async () => {
    for (let i = 0; i < 3; i++) {
      const pid = lodgedPid();
      await eventually(() => isAlive(pid), 'lodged runs');
      process.kill(pid, 'SIGKILL');
      await eventually(() => lodgedPid() !== pid && isAlive(lodgedPid()), 'Apache starts lodged again', 20_000);
    }
    // The restart before this test started the count afresh: 0 s after the first
    // young death, then 1, then 2.
    assert.match(site.errorLog(), /LG00033: lodge: lodged \(pid \d+\) starts in 1 s, after 2 quick exits in a row/);
    assert.match(site.errorLog(), /LG00033: lodge: lodged \(pid \d+\) starts in 2 s, after 3 quick exits in a row/);
    assert.doesNotMatch(site.errorLog(), /starts in 4 s/);
    const r = await site.get('app', '/');
    assert.equal(r.status, 200);
  });

  test('apachectl stop leaves no lodged and no worker behind', async () => {
    assert.equal((await site.get('app', '/')).status, 200);
    const pid = lodgedPid();
    assert.ok(processesOf(uid()).length > 0, 'a worker runs');
    const httpd = site.sb.apache;
    site.sb.apachectl('stop');
    await eventually(() => httpd.exitCode !== null || httpd.signalCode !== null, 'Apache exits', 30_000);
    assert.ok(!isAlive(pid), `lodged (pid ${pid}) stopped with Apache`);
    await eventually(() => processesOf(uid()).length === 0, 'no worker of the tenant remains', 5_000);
  });
});
