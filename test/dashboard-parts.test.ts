import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDeclaration } from '../sidecar/src/pool/declared-app';
import { encodeFrame, encodePairs, FrameType } from '../sidecar/src/protocol/frames';
import { ownPageOf, parseDashboardApp } from '../sidecar/src/protocol/schemas';
import { EventRing } from '../sidecar/src/status/events';
import { readLogTail } from '../sidecar/src/status/log-tail';
import { renderLive } from '../sidecar/src/status/dashboard-page';
import { ProtocolError } from '../sidecar/src/errors';

// The tenant dashboard's parts that need no Apache: what the file declares, the APP
// frame, clearing an app's events, reading the log tail, escaping what the tenant wrote.

test('a file declares the dashboard only with a LodgeDashboard line of its own', () => {
  assert.equal(parseDeclaration('LodgeApp wsgi app.py\nLodgeDashboard /.lodge\n')?.dashboard, '/.lodge');
  assert.equal(parseDeclaration('LodgeApp wsgi app.py\n')?.dashboard, undefined);
  assert.equal(parseDeclaration('LodgeApp wsgi app.py\n<Files x>\nLodgeDashboard /.lodge\n</Files>\n')?.dashboard, undefined, 'not inside <Files>');
});

test('APP kind=dashboard is told apart on its pair headers, and takes root and config only', () => {
  const app = encodeFrame(FrameType.APP, encodePairs([['kind', 'dashboard'], ['root', '/srv/a'], ['config', '/srv/a/.htaccess']]));
  assert.equal(ownPageOf(app), 'dashboard');
  assert.equal(ownPageOf(encodeFrame(FrameType.APP, encodePairs([['kind', 'status']]))), 'status');
  assert.equal(ownPageOf(encodeFrame(FrameType.APP, encodePairs([['kind', 'wsgi']]))), undefined);
  assert.deepEqual(parseDashboardApp(app), { kind: 'dashboard', root: '/srv/a', config: '/srv/a/.htaccess' });
  assert.throws(() => parseDashboardApp(encodeFrame(FrameType.APP, encodePairs([['kind', 'dashboard'], ['root', '/srv/../etc'], ['config', '/x']]))), ProtocolError);
  assert.throws(() => parseDashboardApp(encodeFrame(FrameType.APP, encodePairs([['kind', 'dashboard'], ['root', '/srv/a'], ['config', '/x'], ['uid', '0']]))), ProtocolError);
});

test('clearing an app\'s events drops those of that app and uid only, and the ring keeps working', () => {
  const ring = new EventRing(4);
  for (let i = 0; i < 6; i++) ring.push({ at: i, uid: i % 2, app: `/srv/${i % 2}`, kind: 'kill', message: `m${i}` });
  assert.equal(ring.drop((e) => e.app === '/srv/1' && e.uid === 1), 2);
  assert.deepEqual(ring.list().map((e) => e.message), ['m2', 'm4']);
  ring.push({ at: 9, uid: 1, app: '/srv/1', kind: 'kill', message: 'm9' });
  assert.deepEqual(ring.list().map((e) => e.message), ['m2', 'm4', 'm9']);
});

test('the log tail is the file\'s end from a line start, and never a symbolic link\'s target or another owner\'s file', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-tail-'));
  try {
    fs.mkdirSync(path.join(root, 'logs'));
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'x'.repeat(20)}`).join('\n') + '\n';
    fs.writeFileSync(path.join(root, 'logs', 'lodge.log'), lines);
    const tail = readLogTail(root, 'logs/lodge.log', process.getuid!(), 1024);
    assert.ok(tail.ok);
    assert.match(tail.text, /^line \d+ x+\n/);
    assert.match(tail.text, /line 4999 x+\n$/);
    assert.equal(readLogTail(root, 'logs/lodge.log', process.getuid!() + 1).ok, false, 'owned by someone else');
    fs.renameSync(path.join(root, 'logs', 'lodge.log'), path.join(root, 'other'));
    fs.symlinkSync(path.join(root, 'other'), path.join(root, 'logs', 'lodge.log'));
    const link = readLogTail(root, 'logs/lodge.log', process.getuid!());
    assert.equal(link.ok, false);
    fs.rmSync(path.join(root, 'logs'), { recursive: true });
    fs.mkdirSync(path.join(root, 'real'));
    fs.copyFileSync(path.join(root, 'other'), path.join(root, 'real', 'lodge.log'));
    fs.symlinkSync(path.join(root, 'real'), path.join(root, 'logs'));
    assert.deepEqual(readLogTail(root, 'logs/lodge.log', process.getuid!()), { ok: false, why: 'logs goes through a symbolic link' });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('what the tenant wrote (log lines, messages) is text on the page, never markup', () => {
  const html = renderLive({
    root: '/srv/a',
    user: 'u',
    logFile: 'logs/lodge.log',
    log: { ok: true, text: '<script>alert(1)</script>\n', size: 10 },
    snapshot: { version: 1, lodged: { pid: 1, version: 'x', uptime: 1, enforcement: 'rlimits' }, at: 0, tenants: [], events: [{ at: 0, uid: 5, app: '/srv/a', kind: 'crash', message: '<img src=x onerror=alert(2)>' }] },
  });
  assert.doesNotMatch(html, /<script>|<img/);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
});
