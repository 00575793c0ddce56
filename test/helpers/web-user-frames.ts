import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lookupUser } from '../../sidecar/src/users';

// Frames sent to lodged as the web server's user (what mod_php or a CGI without
// suEXEC could do), for the tests of what lodged trusts in an APP frame.

export function frame(type: number, payload: Buffer, flags = 0): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h[1] = flags;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

export function pairs(kv: Array<[string, string]>): Buffer {
  return Buffer.concat(kv.map(([k, v]) => {
    const n = Buffer.alloc(2);
    n.writeUInt16BE(Buffer.byteLength(k));
    const l = Buffer.alloc(4);
    l.writeUInt32BE(Buffer.byteLength(v));
    return Buffer.concat([n, Buffer.from(k), l, Buffer.from(v)]);
  }));
}

/** Sends one request to lodged as the web server's user; resolves with all it got back. */
export function asWebUser(socket: string, bytes: Buffer): Promise<Buffer> {
  const web = lookupUser('www-data');
  assert.ok(web, 'the host has a www-data user');
  const script = `
    const c = require('net').connect(process.argv[1], () => c.write(Buffer.from(process.argv[2], 'base64')));
    const got = [];
    // Until END or ERROR: a peer that hangs up first is a client gone, not an answer.
    c.on('data', (d) => {
      got.push(d);
      const all = Buffer.concat(got);
      for (let i = 0; i + 8 <= all.length; i += 8 + all.readUInt32BE(i + 4)) {
        if ((all[i] === 0x12 || all[i] === 0x13) && i + 8 + all.readUInt32BE(i + 4) <= all.length) c.destroy();
      }
    });
    c.on('close', () => process.stdout.write(Buffer.concat(got).toString('base64')));
    c.on('error', (e) => { console.error(e.message); process.exit(3); });
    setTimeout(() => c.destroy(), 8000);
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', script, socket, bytes.toString('base64')], { uid: web.uid, gid: web.gid, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve(Buffer.from(out, 'base64')) : reject(new Error(`peer exited ${code}: ${err}`))));
  });
}

/** The DATA payloads of a response, joined. */
export function body(reply: Buffer): string {
  const parts: Buffer[] = [];
  for (let i = 0; i + 8 <= reply.length; ) {
    const len = reply.readUInt32BE(i + 4);
    if (reply[i] === 0x11) parts.push(reply.subarray(i + 8, i + 8 + len));
    if (reply[i] === 0x13) parts.push(Buffer.from(`ERROR ${reply.readUInt16BE(i + 8)}`));
    i += 8 + len;
  }
  return Buffer.concat(parts).toString();
}
