import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The status page's actions are POSTs that carry a token only the page can know: an
 * HMAC, under a secret of this lodged's own (made at start, never written anywhere),
 * of who Apache authenticated and of a session cookie the page set. Another site can
 * make the browser send the cookie, and the credentials Apache checks, but cannot
 * read the page, so it cannot send the token. A restart of lodged makes a new secret:
 * the page then asks to be reloaded.
 */
export const SESSION_COOKIE = 'lodge_status_session';

const SESSION = /^[0-9a-f]{32}$/;

export class CsrfGuard {
  private readonly secret: Buffer;

  constructor(secret: Buffer = randomBytes(32)) {
    this.secret = secret;
  }

  /** A new session id, for a browser that sent none. */
  newSession(): string {
    return randomBytes(16).toString('hex');
  }

  token(user: string | undefined, session: string): string {
    return createHmac('sha256', this.secret).update(`${user ?? ''}\0${session}`).digest('base64url');
  }

  /** Compared in constant time; no session, or a token of another user or session, fails. */
  check(user: string | undefined, session: string | undefined, token: string | undefined): boolean {
    if (!session || !token) return false;
    const want = Buffer.from(this.token(user, session));
    const got = Buffer.from(token);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/** The session id in a Cookie header, when well formed. */
export function sessionOf(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const i = part.indexOf('=');
    if (i < 0 || part.slice(0, i).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(i + 1).trim();
    if (SESSION.test(value)) return value;
  }
  return undefined;
}

export function sessionCookie(session: string, base: string, https: boolean): string {
  // The location's path is the host's own config; one a cookie cannot carry gets '/'.
  const path = /^\/[^;,\s]*$/.test(base) ? base : '/';
  return `${SESSION_COOKIE}=${session}; Path=${path}; HttpOnly; SameSite=Strict${https ? '; Secure' : ''}`;
}
