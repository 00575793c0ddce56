import { test } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from '../sidecar/src/pool/registry';
import * as assert from 'node:assert/strict';
import { checkConfig } from '../sidecar/src/config/load';
import { ConfigError, ProtocolError } from '../sidecar/src/errors';
import { parseAppSpec } from '../sidecar/src/pool/app-spec';
import { FrameType, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import {
  FALLBACK_TENANT_REQUESTS, MIN_TENANT_REQUESTS, NoteGate, ShareMember, TenantCaps, TenantShare, tenantCaps,
} from '../sidecar/src/pool/tenant-share';

// The share's bookkeeping, without processes: pools are FakeMembers whose counts the
// test sets, as a real pool's queue and workers would move.

/** The order FakeMembers were asked to start a worker in. */
const poked: FakeMember[] = [];

class FakeMember implements ShareMember {
  serving = 0;
  waiting = 0;
  starting = 0;
  idle = 0;
  busy = 0;
  gaveUp = 0;
  leaving = 0;
  pokes = 0;
  constructor(readonly uid: number, readonly maxProcesses = 4) {}
  held(): number {
    return this.serving + this.waiting;
  }
  processes(): number {
    return this.idle + this.busy + this.starting;
  }
  staying(): number {
    return this.processes() - this.leaving;
  }
  wanting(): number {
    return Math.max(0, Math.min(this.waiting - this.starting, this.maxProcesses - this.processes()));
  }
  giveUpIdle(): boolean {
    if (this.idle === 0) return false;
    this.idle--;
    this.gaveUp++;
    return true;
  }
  spawnIfWaiting(): void {
    this.pokes++;
    poked.push(this);
  }
}

/** One tenant (uid 1001) with two apps. */
function twoApps(): { share: TenantShare; a: FakeMember; b: FakeMember } {
  const share = new TenantShare();
  const a = new FakeMember(1001);
  const b = new FakeMember(1001);
  share.join(a);
  share.join(b);
  return { share, a, b };
}

const caps = (requests: number, processes = 16): TenantCaps => ({ requests, processes, memory: 1 << 30 });

test('requests are counted over all apps of a tenant, and only its own', () => {
  const share = new TenantShare();
  const a = new FakeMember(1001);
  const b = new FakeMember(1001);
  const c = new FakeMember(1001);
  const other = new FakeMember(2002);
  for (const m of [a, b, c, other]) share.join(m);
  a.serving = 2;
  b.waiting = 1;
  c.serving = 1;
  other.serving = 50;
  assert.equal(share.held(1001), 4);
  assert.equal(share.admits(a, caps(5)), true);
  c.waiting = 1;
  assert.equal(share.admits(b, caps(5)), false, 'a fifth held request fills a share of 5');
  assert.equal(share.admits(other, caps(51)), true, "another tenant's count is its own");
  share.leave(a);
  assert.equal(share.held(1001), 3, 'a forgotten app no longer counts');
});

test('at the worker cap, a starved app takes an idle worker of a sibling, once per waiting request', () => {
  const { share, a, b } = twoApps();
  a.idle = 3;
  const c = caps(100, 3);
  b.waiting = 1;
  assert.equal(share.mayStart(b, c), false);
  assert.equal(share.reclaim(b), true);
  assert.equal(a.gaveUp, 1);
  assert.equal(share.reclaim(b), false, 'one worker already leaves for the one waiting request');
  assert.equal(a.gaveUp, 1);
  // The worker's exit lets the starved app start its own.
  share.workerGone(1001);
  assert.equal(b.pokes, 1);
  assert.equal(a.pokes, 0, 'an app with nothing waiting is not asked');
});

test('a worker that finishes leaves instead of idling when a sibling waits at the cap', () => {
  const { share, a, b } = twoApps();
  a.busy = 2;
  const c = caps(100, 2);
  assert.equal(share.siblingWaits(a, c, 0), false, 'nobody waits');
  b.waiting = 2;
  assert.equal(share.siblingWaits(a, c, 0), true);
  assert.equal(share.siblingWaits(a, c, 0), true, 'two wait: a second worker leaves too');
  assert.equal(share.siblingWaits(a, c, 0), false, 'two leave already for two waiting');
  share.workerGone(1001);
  assert.equal(b.pokes, 1);
});

test('a busy app gives a worker to a starved sibling only down to its fair part of the cap', () => {
  const { share, a, b } = twoApps();
  const c = caps(100, 4);
  a.busy = 4;
  a.serving = 4;
  a.waiting = 5; // a's own queue never empties
  b.waiting = 3;
  // Two apps hold requests: a's fair part is 2 of 4.
  assert.equal(share.siblingWaits(a, c, a.waiting), true);
  a.leaving = 1; // still a process until it exits: counts for the cap, not for a's part
  assert.equal(share.siblingWaits(a, c, a.waiting), true);
  a.leaving = 2;
  assert.equal(share.siblingWaits(a, c, a.waiting), false, 'two leave for b already; a keeps its fair part');
  a.busy = 2;
  a.leaving = 0;
  b.starting = 2;
  share.workerGone(1001, a);
  share.workerGone(1001, a);
  assert.equal(a.pokes, 0, 'the app that gave way does not take the place back');
  assert.equal(b.pokes, 2);
  assert.equal(share.siblingWaits(a, c, a.waiting), false, 'down to its fair part, a keeps its workers for its own queue');
});

test('the place a worker leaves goes to the app with the fewest workers, not back to a busy one', () => {
  const { share, a, b } = twoApps();
  const c = new FakeMember(1001);
  share.join(c);
  const cap = caps(100, 3);
  a.busy = 1;
  a.serving = 1;
  a.waiting = 1;
  b.busy = 2; // one of them fresh, nothing for it but b's own queue
  b.serving = 1;
  b.waiting = 1;
  c.waiting = 2;
  // Three apps hold requests: each one's part is 1; b has 2, c none.
  assert.equal(share.siblingWaits(b, cap, b.waiting), true);
  assert.equal(share.siblingWaits(a, cap, a.waiting), false, 'a has only its part');
  b.busy = 1;
  poked.length = 0;
  share.workerGone(1001, b);
  assert.deepEqual(poked, [c, a], 'c, with no worker, first; b, which gave way, not at all');
});

test('below the worker cap nothing is reclaimed', () => {
  const { share, a, b } = twoApps();
  a.busy = 1;
  b.waiting = 1;
  assert.equal(share.mayStart(b, caps(100, 3)), true);
  assert.equal(share.siblingWaits(a, caps(100, 3), 0), false);
});

test("the requests share is a fraction of Apache's workers, a fixed number when unknown, lowered by LodgeLimit", () => {
  const host = { tenantShare: 0.25 };
  const mem = 8 * 1024 ** 3;
  assert.equal(tenantCaps(host, { apacheWorkers: 150 }, mem).requests, 37);
  assert.equal(tenantCaps(host, { apacheWorkers: 4 }, mem).requests, MIN_TENANT_REQUESTS, 'never below the floor');
  assert.equal(tenantCaps(host, {}, mem).requests, FALLBACK_TENANT_REQUESTS);
  assert.equal(tenantCaps({ tenantShare: 0.5 }, { apacheWorkers: 150 }, mem).requests, 75);
  assert.equal(tenantCaps(host, { apacheWorkers: 150, requests: 10 }, mem).requests, 10, 'LodgeLimit tenant-requests lowers it');
  assert.equal(tenantCaps(host, { apacheWorkers: 150, requests: 100 }, mem).requests, 37, 'and never raises it');
  assert.equal(tenantCaps({ ...host, tenantRequests: 60 }, { apacheWorkers: 150 }, mem).requests, 60, "lodged.json's value is the host's cap");
});

test('workers and memory: lodged.json caps, LodgeLimit lowers, memory defaults to a share of the machine in whole pages', () => {
  const host = { tenantShare: 0.25 };
  const mem = 8 * 1024 ** 3 + 100;
  const d = tenantCaps(host, {}, mem);
  assert.equal(d.processes, 16);
  assert.equal(d.memory, 2 * 1024 ** 3);
  const set = tenantCaps({ ...host, tenantProcesses: 6, tenantMemory: 512 * 1024 ** 2 }, { processes: 3, memory: 1024 ** 3 + 5 }, mem);
  assert.equal(set.processes, 3);
  assert.equal(set.memory, 512 * 1024 ** 2, 'an APP frame cannot raise the memory share');
  assert.equal(tenantCaps(host, { memory: 100 * 1024 * 1024 + 5 }, mem).memory, 100 * 1024 * 1024);
});

test("lodged.json's limits take the tenant keys; sizes are parsed; bad values are refused", () => {
  const s = checkConfig({ limits: { tenantRequests: 6, tenantProcesses: 3, tenantMemory: '160M', tenantShare: 0.5 } }, 'test');
  assert.deepEqual(s.share, { tenantRequests: 6, tenantProcesses: 3, tenantMemory: 160 * 1024 * 1024, tenantShare: 0.5 });
  assert.deepEqual(checkConfig({}, 'test').share, { tenantRequests: undefined, tenantProcesses: undefined, tenantMemory: undefined, tenantShare: 0.25 });
  assert.throws(() => checkConfig({ limits: { tenantShare: 2 } }, 'test'), ConfigError);
  assert.throws(() => checkConfig({ limits: { tenantRequests: 0 } }, 'test'), ConfigError);
  assert.throws(() => checkConfig({ defaults: { tenantRequests: 4 } }, 'test'), ConfigError, 'a share is the host’s, not a per-app default');
});

test("mod_lodge's pairs (Apache's worker count, LodgeLimit tenant-*) reach the caps; malformed ones are refused", () => {
  const settings = checkConfig({}, 'test');
  const app = (extra: Array<[string, string]>) => encodeFrame(FrameType.APP, encodePairs([
    ['root', '/srv/www/t'], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ...extra,
  ]));
  const spec = parseAppSpec(app([['apache.workers', '150'], ['limit.tenant_requests', '12'], ['limit.tenant_processes', '5'], ['limit.tenant_memory', String(1 << 30)]]), settings);
  assert.deepEqual(spec.share, { requests: 12, processes: 5, memory: 1 << 30, apacheWorkers: 150 });
  const caps = tenantCaps(settings.share, spec.share, 8 * 1024 ** 3);
  assert.deepEqual(caps, { requests: 12, processes: 5, memory: 1 << 30 });
  for (const bad of [['apache.workers', '-3'], ['limit.tenant_requests', '1e9'], ['limit.tenant_memory', '0']] as Array<[string, string]>) {
    assert.throws(() => parseAppSpec(app([bad]), settings), ProtocolError, `${bad[0]}=${bad[1]} is refused`);
  }
  const none = parseAppSpec(app([]), settings);
  assert.deepEqual(none.share, {});
  assert.equal(tenantCaps(settings.share, none.share, 8 * 1024 ** 3).requests, FALLBACK_TENANT_REQUESTS);
});

test('refusal notes: one per second per app, saying how many were passed over', () => {
  let now = 1000;
  const gate = new NoteGate(1000, () => now);
  assert.equal(gate.note('/a'), 1);
  assert.equal(gate.note('/a'), 0);
  assert.equal(gate.note('/a'), 0);
  assert.equal(gate.note('/b'), 1, 'each app its own');
  now += 1000;
  assert.equal(gate.note('/a'), 3, 'this one and the two passed over');
});

test("a forged APP frame cannot raise the share derived from Apache's worker count: the fewest seen counts", () => {
  const settings = checkConfig({}, 'test');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-share-'));
  fs.writeFileSync(path.join(dir, 'app.py'), '');
  fs.writeFileSync(path.join(dir, '.htaccess'), 'LodgeApp wsgi app.py\n');
  const registry = new Registry(settings, false);
  const frame = (workers: string, timeout: string) => encodeFrame(FrameType.APP, encodePairs([
    ['root', dir], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ['apache.workers', workers], ['timeout', timeout],
  ]));
  try {
    const honest = registry.poolFor(frame('40', '1'));
    const forged = registry.poolFor(frame('100000', '2'));
    assert.equal(forged, honest, 'the same app as declared');
    const again = new Registry(settings, false);
    try {
      again.poolFor(frame('40', '1'));
      fs.writeFileSync(path.join(dir, '.htaccess'), 'LodgeApp wsgi app.py\nLodgeTimeout 9\n');
      const later = again.poolFor(frame('100000', '3'));
      assert.equal(later.caps.requests, tenantCaps(settings.share, { apacheWorkers: 40 }, os.totalmem()).requests);
    } finally {
      again.close();
    }
  } finally {
    registry.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
