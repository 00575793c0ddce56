import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { firstResponse } from './raw';

/**
 * A corpus of raw HTTP requests, one per `.http` file. In a file, real line breaks
 * are only for reading and are dropped; `\r\n` is CRLF, `\t` a tab, `\xHH` one byte;
 * `$PORT` is the server's port; leading `#` lines describe the case. Bytes outside
 * the escapes are sent as the file holds them (UTF-8).
 */
export interface RawCase {
  name: string;
  about: string;
  bytes(port: number): Buffer;
}

export function loadCorpus(dir: string): RawCase[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.http')).sort().map((f) => {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    const about = lines.filter((l) => l.startsWith('#')).map((l) => l.replace(/^#\s?/, '')).join(' ');
    const text = lines.filter((l) => !l.startsWith('#')).join('');
    return {
      name: f.replace(/\.http$/, ''),
      about,
      bytes: (port: number) => unescape(text.replaceAll('$PORT', String(port))),
    };
  });
}

function unescape(text: string): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const m of text.matchAll(/\\r\\n|\\t|\\x([0-9a-fA-F]{2})/g)) {
    parts.push(Buffer.from(text.slice(at, m.index), 'utf8'));
    parts.push(m[0] === '\\r\\n' ? Buffer.from('\r\n') : m[0] === '\\t' ? Buffer.from('\t') : Buffer.from([parseInt(m[1], 16)]));
    at = m.index + m[0].length;
  }
  parts.push(Buffer.from(text.slice(at), 'utf8'));
  return Buffer.concat(parts);
}

export interface RawReply {
  status: number;
  body: Buffer;
}

/**
 * Sends one raw request on a connection of its own and reads the final response
 * (interim 1xx responses passed over) until the server closes: every case asks for
 * the close (Connection: close, or HTTP/1.0).
 */
export function sendRaw(port: number, bytes: Buffer, timeoutMs = 30_000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => c.write(bytes));
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('error', reject);
    c.setTimeout(timeoutMs, () => c.destroy(new Error(`no close within ${timeoutMs} ms; got: ${Buffer.concat(parts).toString('latin1')}`)));
    c.on('close', () => {
      try {
        resolve(parseReply(Buffer.concat(parts)));
      } catch (err) {
        reject(err);
      }
    });
  });
}

// 1xx answers have no body; the final one is read as any other first response.
function parseReply(all: Buffer): RawReply {
  let stream = all;
  for (;;) {
    const { res, rest } = firstResponse(stream, true);
    if (res.status >= 200) return { status: res.status, body: firstResponse(stream, false).res.body };
    stream = rest;
  }
}
