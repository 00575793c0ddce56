import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../sidecar/src/config/load';
import { ProtocolError, RefusedError, ShuttingDownError } from '../sidecar/src/errors';
import { FrameType, Release, encodeFrame, encodePairs } from '../sidecar/src/protocol/frames';
import { appBook } from '../sidecar/src/status/app-book';
import { statusEvents } from '../sidecar/src/status/events';
import { refusedRequest, releasedStatus, responseStatus } from '../sidecar/src/status/request-hooks';

test('a refused app is remembered as refused, under its directory\'s owner, with the limits it asked for', () => {
  loadConfig();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-refused-'));
  try {
    const frame = encodeFrame(FrameType.APP, encodePairs([['root', dir], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ['timeout', '7']]));
    refusedRequest(frame, new RefusedError(`${dir} is writable by group or others (mode 777)`));
    const rec = appBook.get(dir)!;
    assert.ok(rec, 'a record for the refused app');
    assert.equal(rec.uid, fs.statSync(dir).uid);
    assert.equal(rec.limits!.timeout, 7);
    assert.match(rec.refusal!.message, /writable by group or others/);
    const before = statusEvents.size;
    refusedRequest(frame, new ShuttingDownError('lodged is shutting down'));
    assert.equal(statusEvents.size, before, 'a shutdown is no refusal of the app');
    refusedRequest(frame, new ProtocolError('cannot read the APP frame'));
    assert.equal(statusEvents.list().at(-1)!.app, undefined, 'a frame lodged cannot read is the host\'s event, not the app\'s');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the status of an answer, from its first bytes or from RELEASE', () => {
  const head = encodeFrame(FrameType.HEAD, Buffer.from([0x01, 0x94]));
  assert.equal(responseStatus(head), 404);
  assert.equal(responseStatus(head.subarray(0, 9)), 0, 'cut short: not seen');
  assert.equal(responseStatus(encodeFrame(FrameType.DATA, Buffer.from('ab'))), 0);
  assert.equal(releasedStatus(Release.DONE, 201), 201, 'mod_lodge carried it and says what it answered');
  assert.equal(releasedStatus(Release.DONE, 0), 0, 'nothing answered: not seen');
  assert.equal(releasedStatus(Release.TIMEOUT, 0), 504);
  assert.equal(releasedStatus(Release.TIMEOUT, 200), 200, 'the client had its status already');
  assert.equal(releasedStatus(Release.BROKEN, 0), 502);
});
