import { PeerInfo } from './socket-pair';

/**
 * The HTTP/1.1 request the app's server is given for one REQ (PROTOCOL.md, "REQ pairs"),
 * as a reverse proxy in front of it would send it:
 *
 * - method and URL as the client sent them (REQUEST_URI, not decoded, query included;
 *   an app below a sub-path sees the whole path, as behind a proxy that keeps it);
 * - each HTTP_* pair back as a header (`HTTP_USER_AGENT` as `User-Agent`: the client's
 *   spelling of a name does not reach lodged), `Content-Type` and `Content-Length` from
 *   CONTENT_TYPE and CONTENT_LENGTH, `Transfer-Encoding: chunked` for a body that had no
 *   length (Apache de-chunked it; the app's server reads it chunked again);
 * - `X-Forwarded-For`: the client's own header, if any, with REMOTE_ADDR appended;
 *   `X-Forwarded-Proto`: `https` when the client spoke TLS to Apache, else `http`;
 *   `X-Forwarded-Host`: the client's Host. The last two replace what the client sent;
 *   the socket's remoteAddress/remotePort are the client's too, and `encrypted` is
 *   set for TLS, so an app that trusts no proxy header still sees the client;
 * - hop-by-hop headers are the connection's, not the request's: `Connection: keep-alive`
 *   (the in-process connection serves one request after another, app-connection.ts), `Expect` dropped (Apache answered the
 *   100-continue), and `Upgrade`/`Connection: upgrade` only on a WebSocket handshake
 *   that mod_lodge tunnels.
 */
export interface RequestHead {
  method: string;
  url: string;
  headers: Record<string, string>;
  peer: PeerInfo;
  /** A WebSocket handshake (mod_lodge's TUNNEL rule): the app may answer 101 and take the connection. */
  tunnel: boolean;
  /** For the tenant's log: "GET /path". */
  line: string;
}

// Hop-by-hop (RFC 9110 7.6.1) or set by us; never passed on from the client.
const DROPPED = new Set(['CONNECTION', 'KEEP_ALIVE', 'PROXY_CONNECTION', 'TE', 'TRAILER', 'TRANSFER_ENCODING', 'UPGRADE', 'EXPECT', 'X_FORWARDED_PROTO', 'X_FORWARDED_HOST', 'X_FORWARDED_FOR', 'HOST']);

// Spelled once per name: every request brings the same few dozen.
const NAMES = new Map<string, string>();
const NAMES_MAX = 1000;

/** `USER_AGENT` -> `User-Agent`. */
function headerName(cgi: string): string {
  let name = NAMES.get(cgi);
  if (name !== undefined) return name;
  name = cgi
    .toLowerCase()
    .split('_')
    .map((w) => (w ? w[0].toUpperCase() + w.slice(1) : w))
    .join('-');
  if (NAMES.size < NAMES_MAX) NAMES.set(cgi, name);
  return name;
}

const hasToken = (value: string | undefined, token: string) =>
  value !== undefined && value.split(',').some((t) => t.trim().toLowerCase() === token);

export function requestHead(pairs: Array<[string, string]>): RequestHead {
  const env = new Map(pairs);
  const get = (k: string) => env.get(k);
  const method = get('REQUEST_METHOD') || 'GET';
  const url = get('REQUEST_URI') || `${get('SCRIPT_NAME') ?? ''}${get('PATH_INFO') ?? ''}${get('QUERY_STRING') ? `?${get('QUERY_STRING')}` : ''}` || '/';
  const https = /^(on|1)$/i.test(get('HTTPS') ?? '');
  const remote = get('REMOTE_ADDR') || '127.0.0.1';
  const host = get('HTTP_HOST') || `${get('SERVER_NAME') ?? 'localhost'}${get('SERVER_PORT') ? `:${get('SERVER_PORT')}` : ''}`;
  const tunnel =
    method === 'GET' && get('SERVER_PROTOCOL') === 'HTTP/1.1' && hasToken(get('HTTP_UPGRADE'), 'websocket') &&
    hasToken(get('HTTP_CONNECTION'), 'upgrade') && get('CONTENT_LENGTH') === undefined && get('HTTP_TRANSFER_ENCODING') === undefined;

  const headers: Record<string, string> = { Host: host };
  for (const [k, v] of pairs) {
    if (!k.startsWith('HTTP_')) continue;
    const name = k.slice(5);
    if (DROPPED.has(name)) continue;
    headers[headerName(name)] = v;
  }
  if (get('CONTENT_TYPE') !== undefined) headers['Content-Type'] = get('CONTENT_TYPE')!;
  if (get('CONTENT_LENGTH') !== undefined) headers['Content-Length'] = get('CONTENT_LENGTH')!;
  else if (get('HTTP_TRANSFER_ENCODING') !== undefined) headers['Transfer-Encoding'] = 'chunked';
  const xff = get('HTTP_X_FORWARDED_FOR');
  headers['X-Forwarded-For'] = xff ? `${xff}, ${remote}` : remote;
  headers['X-Forwarded-Proto'] = https ? 'https' : 'http';
  headers['X-Forwarded-Host'] = host;
  if (tunnel) {
    headers.Connection = 'Upgrade';
    headers.Upgrade = get('HTTP_UPGRADE')!;
  } else {
    headers.Connection = 'keep-alive';
  }
  const port = Number(get('SERVER_PORT') ?? 0);
  return {
    method,
    url,
    headers,
    tunnel,
    line: `${method} ${url}`,
    peer: {
      remoteAddress: remote,
      remotePort: Number(get('REMOTE_PORT') ?? 0),
      localAddress: get('SERVER_ADDR') || '127.0.0.1',
      localPort: Number.isInteger(port) ? port : 0,
      encrypted: https,
    },
  };
}
