import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { H2C_DIRECTIVES, MODDIR } from '../../sidecar/src/sandbox/apache-conf';

// HTTP/2 in front of Lodge: Apache 2.4's mod_http2, over TLS (h2) or in the clear with
// prior knowledge (h2c), and Node's http2 client.

export type H2Mode = 'h2' | 'h2c';


/** A throw-away self-signed certificate for `name` in dir: { cert, key } paths. */
export function makeCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=DNS:${name}`, '-addext', 'basicConstraints=critical,CA:FALSE', '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  fs.chmodSync(key, 0o644); // read by Apache's parent only, a test's throw-away key
  return { cert, key };
}

/**
 * Host directives that put mod_http2 in front: `Protocols h2 http/1.1` with TLS on the
 * sandbox's one port (mod_ssl's SSLEngine in the server config, which the tenants'
 * virtual hosts inherit), or `Protocols h2c http/1.1` in the clear.
 */
export function http2Directives(mode: H2Mode, tls?: { cert: string; key: string }): string[] {
  if (mode === 'h2c') return H2C_DIRECTIVES;
  const h2 = [H2C_DIRECTIVES[0]];
  if (!tls) throw new Error('h2 needs a certificate');
  return [
    ...h2,
    `LoadModule ssl_module ${MODDIR}/mod_ssl.so`,
    'Protocols h2 http/1.1',
    'SSLEngine on',
    `SSLCertificateFile "${tls.cert}"`,
    `SSLCertificateKeyFile "${tls.key}"`,
  ];
}

// Every <tenant>.localhost is this machine, whatever the resolver says of it.
const toLoopback = ((_host: string, opts: { all?: boolean }, cb: (err: null, address: unknown, family?: number) => void) =>
  (opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4))) as unknown as net.LookupFunction;

// Node refuses new streams of its own (ENHANCE_YOUR_CALM) past 10 MB of a session's
// buffers by default; the tests hold more than that in uploads at once.
const CLIENT = { lookup: toLoopback, maxSessionMemory: 256 };

/** One HTTP/2 connection to the sandbox's port, for host `name`. */
export function connectH2(mode: H2Mode, port: number, name: string, ca?: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = mode === 'h2'
      ? http2.connect(`https://${name}:${port}`, { ...CLIENT, servername: name, ca: ca && fs.readFileSync(ca) })
      : http2.connect(`http://${name}:${port}`, CLIENT);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** The whole response of a stream already opened. */
export function h2Reply(stream: http2.ClientHttp2Stream, timeoutMs = 60_000): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL, () => reject(new Error(`no whole response within ${timeoutMs} ms`))), timeoutMs);
    stream.on('response', (h) => { headers = h; });
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('error', (err) => { clearTimeout(timer); reject(err); });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(parts) });
    });
  });
}

/** A request with an optional body, written whole (no content-length unless given). */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Reply> {
  const stream = session.request(headers, { endStream: body === undefined });
  const reply = h2Reply(stream);
  if (body !== undefined) stream.end(body);
  return reply;
}

/** Resolves with the bytes received once `ok(all so far)` holds. */
export function h2DataUntil(stream: http2.ClientHttp2Stream, ok: (all: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let all = '';
    const onData = (d: Buffer) => {
      all += d.toString('latin1');
      if (ok(all)) {
        stream.off('data', onData);
        resolve(all);
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.once('end', () => reject(new Error(`stream ended before the data expected; got ${JSON.stringify(all.slice(0, 200))}`)));
  });
}
