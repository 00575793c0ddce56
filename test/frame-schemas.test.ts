import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ProtocolError } from '../sidecar/src/errors';
import { FrameType, Release, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import { FAIL_MAX } from '../sidecar/src/protocol/constants';
import { parseAppPairs, parseFail, parseReady, parseRelease, parseVerdict } from '../sidecar/src/protocol/schemas';
import { pairObject } from '../sidecar/src/protocol/pair-object';
import { parseAppSpec } from '../sidecar/src/pool/app-spec';
import { checkConfig } from '../sidecar/src/config/load';

const BASE: Array<[string, string]> = [['root', '/srv/www/t'], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', '']];
const app = (extra: Array<[string, string]> = [], base = BASE) => encodeFrame(FrameType.APP, encodePairs([...base, ...extra]));

/** The ProtocolError a parse throws, whose message must match every pattern. */
function refused(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `a ProtocolError, not ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

test('APP: the pairs mod_lodge sends are taken, numbers as integers', () => {
  const a = parseAppPairs(app([
    ['uid', '1001'], ['gid', '1001'], ['timeout', '30'], ['memory', '268435456'], ['processes', '0'], ['cpu', '0'], ['idle', '0'],
    ['limit.timeout', '60'], ['limit.tasks', '300'], ['config', '/srv/www/t/.htaccess'], ['env.DATABASE_URL', 'sqlite:///x'],
  ]));
  assert.equal(a.root, '/srv/www/t');
  assert.equal(a.timeout, 30);
  assert.equal(a.memory, 268435456);
  assert.deepEqual(a.limit, { timeout: 60, tasks: 300 });
  assert.deepEqual(a.env, { DATABASE_URL: 'sqlite:///x' });
  // Only root, kind and entry are required: a peer that sends less gets the defaults.
  assert.deepEqual(parseAppPairs(app([], [['root', '/a'], ['kind', 'wsgi'], ['entry', 'app.py']])).callable, '');
});

test('APP: an unknown pair is refused, whether plain or under limit.; env.* is a declared family', () => {
  refused(() => parseAppPairs(app([['colour', 'teal']])), /unknown pair 'colour'/);
  refused(() => parseAppPairs(app([['limit.colour', '1']])), /unknown pair 'limit\.colour'/);
  refused(() => parseAppPairs(app([['env.bad-name', 'x']])), /env\.bad-name: expected LodgeEnv names that are variable names, got the name 'bad-name'/);
  refused(() => parseAppPairs(app([['root', '/b']])), /'root' given twice/);
});

test('APP: each bad value says what was expected and what came', () => {
  refused(() => parseAppPairs(app([['timeout', '-5']])), /timeout: expected an integer from 0 to \d+, got '-5'/);
  refused(() => parseAppPairs(app([['memory', '1e9']])), /memory: expected an integer/, /got '1e9'/);
  refused(() => parseAppPairs(app([['processes', '007']])), /processes: expected an integer/);
  refused(() => parseAppPairs(app([], [['root', 'srv/t'], ['kind', 'wsgi'], ['entry', 'app.py']])), /root: expected an absolute path/, /got 'srv\/t'/);
  refused(() => parseAppPairs(app([], [['root', '/srv/../etc'], ['kind', 'wsgi'], ['entry', 'app.py']])), /root: expected an absolute path without \.\./);
  refused(() => parseAppPairs(app([], [['root', '/srv/t'], ['kind', 'ruby'], ['entry', 'app.rb']])), /kind: expected 'wsgi', 'asgi' or 'node'/, /got 'ruby'/);
  refused(() => parseAppPairs(app([], [['root', '/srv/t'], ['kind', 'wsgi'], ['entry', '../x.py']])), /entry: expected a path inside the app directory/);
  refused(() => parseAppPairs(app([], [['root', '/srv/t'], ['kind', 'wsgi']])), /entry: expected a path inside the app directory, got none/);
  refused(() => parseAppPairs(app([['callable', 'not a name']], BASE.slice(0, 3))), /callable: expected a Python name/);
  // A quoted value is short and on one line, whatever came.
  refused(() => parseAppPairs(app([['kind', 'x']], [['root', '/a'], ['entry', 'app.py'], ['callable', '']]).subarray(0)), /kind/);
  const long = `${'x'.repeat(5000)}\n[error] forged`;
  assert.throws(() => parseAppPairs(app([['timeout', long]])), (err: Error) => err.message.length < 400 && !err.message.includes('\n'));
});

test('APP: the tenant share pairs are taken as positive integers and exposed as spec.share', () => {
  const settings = checkConfig({}, 'test');
  const spec = parseAppSpec(app([
    ['limit.tenant_requests', '40'], ['limit.tenant_processes', '8'], ['limit.tenant_memory', String(1 << 30)], ['apache.workers', '150'],
  ]), settings);
  assert.deepEqual(spec.share, { requests: 40, processes: 8, memory: 1 << 30, apacheWorkers: 150 });
  assert.deepEqual(parseAppSpec(app(), settings).share, {});
  refused(() => parseAppPairs(app([['limit.tenant_requests', '0']])), /limit\.tenant_requests: expected an integer from 1/);
  refused(() => parseAppPairs(app([['apache.workers', 'many']])), /apache\.workers: expected an integer from 1/);
});

test('APP: limits are still clamped to the host caps, Apache\'s LodgeLimit lowering them', () => {
  const settings = checkConfig({ limits: { timeout: 100 } }, 'test');
  const spec = parseAppSpec(app([['timeout', '500'], ['limit.processes', '2'], ['processes', '9']]), settings);
  assert.equal(spec.limits.timeout, 100);
  assert.equal(spec.limits.processes, 2);
  assert.deepEqual(parseAppSpec(app([['env.PATH', '/evil'], ['env.OK', '1']]), settings).env, { OK: '1' }, 'a reserved LodgeEnv name is dropped');
});

test("APP: LodgeConcurrency is the tenant's, under lodged's limits.concurrency lowered by LodgeLimit concurrency", () => {
  const settings = checkConfig({ limits: { concurrency: 32 } }, 'test');
  const limits = (pairs: Array<[string, string]>) => parseAppSpec(app(pairs), settings);
  assert.equal(limits([]).limits.concurrency, 10, 'none asked: the default');
  assert.equal(limits([['concurrency', '0']]).limits.concurrency, 10, '0 is none asked');
  assert.equal(limits([['concurrency', '20']]).limits.concurrency, 20);
  assert.equal(limits([['concurrency', '50']]).limits.concurrency, 32, "over lodged's cap");
  const lowered = limits([['concurrency', '20'], ['limit.concurrency', '4']]);
  assert.equal(lowered.limits.concurrency, 4, "over Apache's cap");
  assert.equal(lowered.caps.concurrency, 4);
  assert.equal(limits([['limit.concurrency', '4']]).limits.concurrency, 4, 'the default, lowered to the cap');
  assert.equal(limits([['limit.concurrency', '60']]).caps.concurrency, 32, 'LodgeLimit never raises a cap');
  refused(() => parseAppPairs(app([['concurrency', 'many']])), /concurrency: expected an integer/);
});

test('READY: a pid and the files, each a path; nothing else', () => {
  const ready = (pairs: Array<[string, string]>) => encodeFrame(FrameType.READY, encodePairs(pairs));
  assert.deepEqual(parseReady(ready([['pid', '42'], ['file', '/a/b.py'], ['file', '/a/c.py']])), { pid: 42, file: ['/a/b.py', '/a/c.py'] });
  assert.deepEqual(parseReady(ready([['pid', '42']])).file, []);
  refused(() => parseReady(ready([['file', '/a']])), /pid: expected an integer from 1 to 4194304, got none/);
  refused(() => parseReady(ready([['pid', '0']])), /pid: expected an integer from 1/, /got '0'/);
  refused(() => parseReady(ready([['pid', '42'], ['pid', '43']])), /'pid' given twice/);
  refused(() => parseReady(ready([['pid', '42'], ['mode', 'x']])), /unknown pair 'mode'/);
  refused(() => parseReady(ready([['pid', '42'], ['file', '']])), /file\.0: expected a file path, got ''/);
  refused(() => parseReady(ready([['pid', '42'], ['file', 'a\0b']])), /file\.0: expected a file path without NUL/);
  refused(() => parseReady(Buffer.concat([encodeFrame(FrameType.READY, Buffer.from([0, 9, 1]))])), /READY: pair name of 9 bytes runs past/);
});

test('FAIL: UTF-8 text up to its cap; RELEASE: a known verdict and a status', () => {
  assert.equal(parseFail(encodeFrame(FrameType.FAIL, Buffer.from('app.py line 3: NameError'))), 'app.py line 3: NameError');
  refused(() => parseFail(encodeFrame(FrameType.FAIL, Buffer.alloc(FAIL_MAX + 1, 0x41))), /FAIL: payload: expected/);
  assert.deepEqual(parseRelease(encodeFrame(FrameType.RELEASE, Buffer.from([Release.STUCK, 0, 0]))), { verdict: Release.STUCK, status: 0 });
  assert.deepEqual(parseRelease(encodeFrame(FrameType.RELEASE, Buffer.from([Release.DONE, 0x01, 0xf4]))), { verdict: Release.DONE, status: 500 });
  refused(() => parseRelease(encodeFrame(FrameType.RELEASE, Buffer.from([7, 0, 0]))), /RELEASE: expected a verdict, one of 0 \(DONE\)/, /got RELEASE with unknown verdict 7$/);
  refused(() => parseRelease(encodeFrame(FrameType.RELEASE, Buffer.from([0]))), /expected a payload of 3 bytes, got 1/);
  refused(() => parseRelease(encodeFrame(FrameType.RELEASE, Buffer.from([0, 0x27, 0x10]))), /expected status 0 or 100-599, got 10000/);
});

test('pairs become an object: families gather, repeated names make arrays, others come once', () => {
  const o = pairObject([['a', '1'], ['env.X', '2'], ['env.X', '3'], ['file', 'p'], ['file', 'q']], { families: ['env.'], repeated: ['file'] }, 'T');
  assert.deepEqual(o, { file: ['p', 'q'], a: '1', env: { X: '3' } });
  assert.throws(() => pairObject([['a', '1'], ['a', '2']], {}, 'T'), /T: pair 'a' given twice; expected once/);
});

test('VERDICT: a pid, or a pid of 0 with the REQ\'s ticket and the app\'s socket; anything else is refused', () => {
  const verdict = (pid: number, rest: Buffer = Buffer.alloc(0)) => {
    const p = Buffer.alloc(7);
    p[0] = Release.LOST;
    p.writeUInt16BE(502, 1);
    p.writeUInt32BE(pid, 3);
    return encodeFrame(FrameType.VERDICT, Buffer.concat([p, rest]));
  };
  const ticket = (t: number, socket: string) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(t);
    return Buffer.concat([b, Buffer.from(socket, 'latin1')]);
  };
  assert.deepEqual(parseVerdict(verdict(4242)), { verdict: Release.LOST, status: 502, pid: 4242, ticket: 0, socket: '' });
  assert.deepEqual(parseVerdict(verdict(0, ticket(0xabcdef, '/run/lodge/apps/x.sock'))), { verdict: Release.LOST, status: 502, pid: 0, ticket: 0xabcdef, socket: '/run/lodge/apps/x.sock' });
  refused(() => parseVerdict(verdict(4242, ticket(1, '/a'))), /expected a payload of 7 bytes, got 13/);
  refused(() => parseVerdict(verdict(0)), /with a pid of 0, expected 13-118 bytes/);
  refused(() => parseVerdict(verdict(0, ticket(0, '/a'))), /ticket of 1-16777215, got 0/);
  refused(() => parseVerdict(verdict(0, ticket(0x1000000, '/a'))), /ticket of 1-16777215/);
  refused(() => parseVerdict(verdict(0, ticket(7, 'relative/x.sock'))), /not an absolute path/);
  refused(() => parseVerdict(verdict(0, ticket(7, '/a\0b'))), /not an absolute path/);
  refused(() => parseVerdict(verdict(0, ticket(7, '/' + 'x'.repeat(107)))), /expected 13-118 bytes/);
});
