import type { RequestHead } from './request-head';

/**
 * The bytes of a request on the in-process connection, written as Node's own http client
 * writes them (and refused where it refuses them): the request line, the head's headers
 * in order, an empty line; the body as is after a Content-Length, or as chunks.
 * Apache checked the client's request already; what is refused here is what would make
 * the bytes the app reads no valid HTTP (a CR, LF or NUL in a value, a space in the URL).
 */

const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\u0021-\u00ff]/;

// Methods whose request has no body unless it says so (Node's client sends them without
// one); any other method, with neither length nor chunks, says Content-Length: 0.
const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** Throws a TypeError saying what of the request cannot be written as HTTP/1.1 (the app's server would refuse it). */
export function checkRequestHead(head: RequestHead): void {
  if (!TOKEN.test(head.method)) throw new TypeError(`Method must be a valid HTTP token ["${head.method}"]`);
  if (BAD_PATH.test(head.url)) throw new TypeError('Request path contains unescaped characters');
  const headers = head.headers;
  for (const name in headers) {
    if (!TOKEN.test(name)) throw new TypeError(`Header name must be a valid HTTP token ["${name}"]`);
    if (BAD_VALUE.test(headers[name])) throw new TypeError(`Invalid character in header content ["${name}"]`);
  }
}

/** A request with a body-taking method and neither length nor chunks says `Content-Length: 0`, as Node's client writes it. */
export function saysZeroLength(head: RequestHead): boolean {
  const headers = head.headers;
  return headers['Content-Length'] === undefined && headers['Transfer-Encoding'] === undefined && !head.tunnel && !BODYLESS.has(head.method);
}

/** The request's head as latin-1 text; throws a TypeError saying what cannot be written. */
export function requestHeadText(head: RequestHead): string {
  checkRequestHead(head);
  let text = `${head.method} ${head.url} HTTP/1.1\r\n`;
  const headers = head.headers;
  for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
  if (saysZeroLength(head)) text += 'Content-Length: 0\r\n';
  return `${text}\r\n`;
}

/** One chunk of a chunked request body (never empty: an empty chunk is the last). */
export function chunk(bytes: Buffer): Buffer {
  const size = `${bytes.length.toString(16)}\r\n`;
  const out = Buffer.allocUnsafe(size.length + bytes.length + 2);
  out.write(size, 0, 'latin1');
  bytes.copy(out, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
