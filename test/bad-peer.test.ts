import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Site, eventually, startSite } from './helpers/site';

let site: Site;
before(async () => {
  site = await startSite({
    ok: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': 'def application(e, s):\n    s("200 OK", [])\n    return [b"still here"]\n' },
  });
});
after(async () => site?.stop());

/**
 * Sends bytes to lodged's socket as root (an allowed peer); resolves with lodged's
 * first answer, or with nothing when lodged hangs up without one.
 */
function sendRaw(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(site.sb.socket, () => c.write(bytes));
    c.once('data', (d) => { c.destroy(); resolve(d); });
    c.on('close', () => resolve(Buffer.alloc(0)));
    c.on('error', reject);
    c.setTimeout(10_000, () => c.destroy(new Error('lodged neither answered nor closed the connection')));
  });
}

function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

test('garbage from a socket peer closes that connection with a log line; lodged serves on', async () => {
  await sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await eventually(() => /bad frame|not expected/.test(site.lodgedLog()), 'lodged logs the bad frame');
  // An oversized length is refused before any payload is read.
  const huge = Buffer.alloc(8);
  huge[0] = 0x01;
  huge.writeUInt32BE(0xfffffff0, 4);
  await sendRaw(huge);
  await eventually(() => /over the .*-byte limit/.test(site.lodgedLog()), 'lodged names the size limit');
  // An APP frame whose pairs run past the payload, then a REQ: answered with ERROR 502.
  const bad = await sendRaw(Buffer.concat([frame(0x01, Buffer.from([0, 200, 1, 2])), frame(0x02, Buffer.alloc(0))]));
  assert.equal(bad[0], 0x13, 'an ERROR frame');
  assert.equal(bad.readUInt16BE(8), 502);
  assert.match(bad.subarray(12).toString(), /runs past/);
  const r = await site.get('ok', '/');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'still here');
});

function pairs(kv: Array<[string, string]>): Buffer {
  return Buffer.concat(kv.map(([k, v]) => {
    const n = Buffer.alloc(2);
    n.writeUInt16BE(k.length);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(Buffer.byteLength(v));
    return Buffer.concat([n, Buffer.from(k), l, Buffer.from(v)]);
  }));
}

test('an APP frame naming a directory that is no app of the host is refused, not run', async () => {
  const app = frame(0x01, pairs([['root', '/etc'], ['kind', 'wsgi'], ['entry', 'passwd'], ['callable', '']]));
  const req = frame(0x02, pairs([['REQUEST_METHOD', 'GET'], ['PATH_INFO', '/']]));
  const reply = await sendRaw(Buffer.concat([app, req, frame(0x04, Buffer.alloc(0))]));
  assert.equal(reply[0], 0x13, 'an ERROR frame');
  assert.equal(reply.readUInt16BE(8), 500);
  assert.match(reply.subarray(12).toString(), /\/etc.*(owned by root|refused|root)/);
});

/**
 * A peer that borrows the 'ok' app's worker: APP (flag BORROW) and REQ, then the
 * GRANT (its descriptor is dropped by the kernel: Node takes no ancillary data),
 * then `then`, after which lodged must hang up.
 */
async function borrowThen(then: Buffer): Promise<Buffer> {
  const u = site.users.ok;
  const app = frame(0x01, pairs([['root', `${site.root}/ok`], ['kind', 'wsgi'], ['entry', 'app.py'], ['callable', ''], ['uid', String(u.uid)], ['gid', String(u.gid)]]));
  app[1] = 0x01;
  const req = frame(0x02, pairs([['REQUEST_METHOD', 'POST'], ['PATH_INFO', '/'], ['CONTENT_LENGTH', '3']]));
  return new Promise((resolve, reject) => {
    const c = net.connect(site.sb.socket, () => c.write(Buffer.concat([app, req])));
    c.once('data', (grant) => {
      c.write(then);
      c.on('close', () => resolve(grant));
    });
    c.on('error', reject);
    c.setTimeout(10_000, () => c.destroy(new Error('lodged neither answered nor closed the connection')));
  });
}

test('a borrowing peer gets a GRANT; a bad RELEASE or a frame out of turn closes it, and lodged serves on', async () => {
  const grant = await borrowThen(frame(0x06, Buffer.from([9, 0, 200])));
  assert.equal(grant[0], 0x14, 'a GRANT frame');
  assert.match(grant.subarray(8).toString('latin1'), /timeout.*\d.*pid.*\d/s);
  await eventually(() => /RELEASE with unknown verdict 9; connection closed/.test(site.lodgedLog()), 'lodged names the bad verdict');
  await borrowThen(frame(0x03, Buffer.from('abc')));
  await eventually(() => /BODY frame is not expected in state 'lent'/.test(site.lodgedLog()), 'lodged names the frame out of turn');
  // Each lent worker was stopped (its stream's state unknown); the app still answers.
  await eventually(() => (site.lodgedLog().match(/lent to an Apache connection that closed mid-request; killed/g) ?? []).length >= 2, 'both lent workers were stopped');
  const r = await site.get('ok', '/', { timeoutMs: 10_000 });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'still here');
});
