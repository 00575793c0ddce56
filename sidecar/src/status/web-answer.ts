import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { CsrfGuard, sessionCookie, sessionOf } from './web-csrf';
import { StatusRequest } from './web-request';

// What the host's status location (web.ts) and a tenant's dashboard (dashboard-web.ts)
// both answer with: responses, the page frame, the Origin check.

/**
 * What the status location answers, for server/apache-conn.ts to send: a response
 * (HEAD, DATA, END), or, for a WebSocket handshake that passed the checks, a tunnel
 * whose stream is handed to `open`.
 */
export type StatusAnswer =
  | { kind: 'response'; status: number; headers: Array<[string, string]>; body: Buffer }
  | { kind: 'tunnel'; open(stream: Duplex): void };

/** On every answer: status data is never cached, never sniffed. */
const ALWAYS: Array<[string, string]> = [
  ['Cache-Control', 'no-store'],
  ['X-Content-Type-Options', 'nosniff'],
];

/**
 * An HTML page with its own script nonce and a CSRF token for `user` in this browser's
 * session (a cookie set on the first visit): what the host page and the dashboard share.
 */
export function htmlPage(csrf: CsrfGuard, req: StatusRequest, user: string | undefined, render: (nonce: string, token: string) => string): StatusAnswer {
  const had = sessionOf(req.cookie);
  const session = had ?? csrf.newSession();
  const nonce = randomBytes(16).toString('base64');
  const html = render(nonce, csrf.token(user, session));
  const headers: Array<[string, string]> = [
    ['Content-Type', 'text/html; charset=utf-8'],
    ['Content-Security-Policy', pageCsp(nonce)],
    ['Referrer-Policy', 'no-referrer'],
  ];
  if (!had) headers.push(['Set-Cookie', sessionCookie(session, req.base, req.https)]);
  return response(200, headers, Buffer.from(html, 'utf8'));
}

/**
 * The page's own script and style only (by nonce), its WebSocket and fetches to this
 * host, nothing framed, nothing loaded from elsewhere.
 */
export function pageCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Whether an Origin header names the host the request came to (scheme included):
 * default ports are the same host with or without them.
 */
export function originMatches(origin: string | undefined, host: string, https: boolean): boolean {
  if (!origin || !host) return false;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== (https ? 'https:' : 'http:') || u.pathname !== '/' && u.pathname !== '') return false;
  const bare = host.toLowerCase().replace(https ? /:443$/ : /:80$/, '');
  return u.host === bare;
}

export function response(status: number, headers: Array<[string, string]>, body: Buffer): StatusAnswer {
  return { kind: 'response', status, headers: [...headers, ...ALWAYS], body };
}

export function text(status: number, message: string, extra: Array<[string, string]> = []): StatusAnswer {
  return response(status, [['Content-Type', 'text/plain; charset=utf-8'], ...extra], Buffer.from(`${message}\n`, 'utf8'));
}
