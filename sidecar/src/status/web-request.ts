import { z } from 'zod';
import { ProtocolError } from '../errors';
import { PairsError, decodePairs } from '../protocol/frames';
import { check } from '../protocol/pair-object';

// A request to the host's status location, as mod_lodge sends it (REQ: the CGI
// environ; docs in /work/notes/status-protocol.md and PROTOCOL.md). Unlike an app's
// REQ, which lodged passes on as bytes, this one lodged reads: only the names below,
// each checked; every other HTTP_* header is let through unread.

const text = (max: number) => z.string().max(max);

const statusEnviron = z.object({
  REQUEST_METHOD: z.string().regex(/^[A-Z]{1,20}$/, { error: 'an HTTP method' }),
  SCRIPT_NAME: text(4096).default(''),
  PATH_INFO: text(4096).default(''),
  QUERY_STRING: text(8192).default(''),
  HTTP_HOST: text(1024).default(''),
  HTTP_ORIGIN: text(1024).optional(),
  HTTP_COOKIE: text(16 * 1024).optional(),
  CONTENT_TYPE: text(1024).optional(),
  REMOTE_USER: text(1024).optional(),
  HTTPS: text(16).optional(),
  'wsgi.url_scheme': text(16).optional(),
  HTTP_UPGRADE: text(1024).optional(),
  HTTP_CONNECTION: text(1024).optional(),
  HTTP_SEC_WEBSOCKET_KEY: text(1024).optional(),
  HTTP_SEC_WEBSOCKET_VERSION: text(1024).optional(),
  HTTP_SEC_WEBSOCKET_PROTOCOL: text(1024).optional(),
  HTTP_SEC_WEBSOCKET_EXTENSIONS: text(1024).optional(),
});

export interface StatusRequest {
  method: string;
  /** The status location's own path (SCRIPT_NAME), and what follows it. */
  base: string;
  path: string;
  query: string;
  host: string;
  origin?: string;
  cookie?: string;
  contentType?: string;
  /** Who Apache authenticated, if it did. */
  user?: string;
  https: boolean;
  /** The WebSocket handshake's headers, named as `ws` reads them. */
  upgradeHeaders: Record<string, string>;
}

/** The REQ frame's environ, checked; a ProtocolError says which pair and why. */
export function parseStatusRequest(frame: Buffer): StatusRequest {
  let pairs: Array<[string, string]>;
  try {
    pairs = decodePairs(frame, 8);
  } catch (err) {
    if (!(err instanceof PairsError)) throw err;
    throw new ProtocolError(`REQ (status): ${err.message}`);
  }
  const env = check(statusEnviron, Object.fromEntries(pairs), 'REQ (status)');
  const upgradeHeaders: Record<string, string> = {};
  const ws: Array<[string, string | undefined]> = [
    ['upgrade', env.HTTP_UPGRADE],
    ['connection', env.HTTP_CONNECTION],
    ['sec-websocket-key', env.HTTP_SEC_WEBSOCKET_KEY],
    ['sec-websocket-version', env.HTTP_SEC_WEBSOCKET_VERSION],
    ['sec-websocket-protocol', env.HTTP_SEC_WEBSOCKET_PROTOCOL],
    ['sec-websocket-extensions', env.HTTP_SEC_WEBSOCKET_EXTENSIONS],
  ];
  for (const [name, value] of ws) if (value !== undefined) upgradeHeaders[name] = value;
  return {
    method: env.REQUEST_METHOD,
    base: env.SCRIPT_NAME,
    path: env.PATH_INFO,
    query: env.QUERY_STRING,
    host: env.HTTP_HOST,
    origin: env.HTTP_ORIGIN,
    cookie: env.HTTP_COOKIE,
    contentType: env.CONTENT_TYPE,
    user: env.REMOTE_USER,
    https: env.HTTPS === 'on' || env.HTTPS === '1' || env['wsgi.url_scheme'] === 'https',
    upgradeHeaders,
  };
}
