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

// What each pair is to requestHead: one lookup per pair, a REQ has some 30 of them.
const enum Var {
  Method = 1, Uri, ScriptName, PathInfo, Query, Https, RemoteAddr, RemotePort, ServerName, ServerPort, ServerAddr, Protocol, ContentType, ContentLength,
  Host, Xff, Upgrade, Connection, TransferEncoding,
  /** Hop-by-hop (RFC 9110 7.6.1) or set by us; never passed on from the client. */
  Dropped,
}

const VARS = new Map<string, Var>([
  ['REQUEST_METHOD', Var.Method], ['REQUEST_URI', Var.Uri], ['SCRIPT_NAME', Var.ScriptName], ['PATH_INFO', Var.PathInfo], ['QUERY_STRING', Var.Query],
  ['HTTPS', Var.Https], ['REMOTE_ADDR', Var.RemoteAddr], ['REMOTE_PORT', Var.RemotePort], ['SERVER_NAME', Var.ServerName], ['SERVER_PORT', Var.ServerPort],
  ['SERVER_ADDR', Var.ServerAddr], ['SERVER_PROTOCOL', Var.Protocol], ['CONTENT_TYPE', Var.ContentType], ['CONTENT_LENGTH', Var.ContentLength],
  ['HTTP_HOST', Var.Host], ['HTTP_X_FORWARDED_FOR', Var.Xff], ['HTTP_UPGRADE', Var.Upgrade], ['HTTP_CONNECTION', Var.Connection], ['HTTP_TRANSFER_ENCODING', Var.TransferEncoding],
  ...['HTTP_KEEP_ALIVE', 'HTTP_PROXY_CONNECTION', 'HTTP_TE', 'HTTP_TRAILER', 'HTTP_EXPECT', 'HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_HOST'].map((k): [string, Var] => [k, Var.Dropped]),
]);

// Spelled once per name: every request brings the same few dozen.
const NAMES = new Map<string, string>();
const NAMES_MAX = 1000;

/** `HTTP_USER_AGENT` -> `User-Agent`. */
function headerName(cgi: string): string {
  let name = NAMES.get(cgi);
  if (name !== undefined) return name;
  name = cgi
    .slice(5)
    .toLowerCase()
    .split('_')
    .map((w) => (w ? w[0].toUpperCase() + w.slice(1) : w))
    .join('-');
  // A copy of the name as key: `cgi` may be a slice of a whole REQ (req-pairs.ts).
  if (NAMES.size < NAMES_MAX) NAMES.set(Buffer.from(cgi, 'latin1').toString('latin1'), name);
  return name;
}

const hasToken = (value: string | undefined, token: string) =>
  value !== undefined && value.split(',').some((t) => t.trim().toLowerCase() === token);

const HTTPS_ON = /^(on|1)$/i;

/**
 * One pass over the pairs, one lookup each: this runs for every request. A name that
 * comes twice counts with its last value (a header keeps its first place).
 */
export function requestHead(pairs: Array<[string, string]>): RequestHead {
  // Host first, as a proxy writes it; its value once the pairs are read.
  const headers: Record<string, string> = { Host: '' };
  // Each variable as its last pair says; the rest of the HTTP_* pairs become headers.
  const got = new Array<string | undefined>(Var.Dropped + 1);
  for (let i = 0; i < pairs.length; i++) {
    const [k, v] = pairs[i];
    const which = VARS.get(k);
    if (which === undefined) {
      if (k.startsWith('HTTP_')) headers[headerName(k)] = v;
    } else got[which] = v;
  }
  const method = got[Var.Method] || 'GET';
  const uri = got[Var.Uri];
  const scriptName = got[Var.ScriptName];
  const pathInfo = got[Var.PathInfo];
  const query = got[Var.Query];
  const httpsVar = got[Var.Https];
  const remoteAddr = got[Var.RemoteAddr];
  const remotePort = got[Var.RemotePort];
  const serverName = got[Var.ServerName];
  const serverPort = got[Var.ServerPort];
  const serverAddr = got[Var.ServerAddr];
  const protocol = got[Var.Protocol];
  const contentType = got[Var.ContentType];
  const contentLength = got[Var.ContentLength];
  const hostHeader = got[Var.Host];
  const xff = got[Var.Xff];
  const upgrade = got[Var.Upgrade];
  const connection = got[Var.Connection];
  const te = got[Var.TransferEncoding];
  const url = uri || `${scriptName ?? ''}${pathInfo ?? ''}${query ? `?${query}` : ''}` || '/';
  const https = httpsVar !== undefined && HTTPS_ON.test(httpsVar);
  const remote = remoteAddr || '127.0.0.1';
  const host = hostHeader || `${serverName ?? 'localhost'}${serverPort ? `:${serverPort}` : ''}`;
  const tunnel = method === 'GET' && protocol === 'HTTP/1.1' && hasToken(upgrade, 'websocket') && hasToken(connection, 'upgrade') && contentLength === undefined && te === undefined;

  headers.Host = host;
  if (contentType !== undefined) headers['Content-Type'] = contentType;
  if (contentLength !== undefined) headers['Content-Length'] = contentLength;
  else if (te !== undefined) headers['Transfer-Encoding'] = 'chunked';
  headers['X-Forwarded-For'] = xff ? `${xff}, ${remote}` : remote;
  headers['X-Forwarded-Proto'] = https ? 'https' : 'http';
  headers['X-Forwarded-Host'] = host;
  if (tunnel) {
    headers.Connection = 'Upgrade';
    headers.Upgrade = upgrade!;
  } else {
    headers.Connection = 'keep-alive';
  }
  const port = Number(serverPort ?? 0);
  return {
    method,
    url,
    headers,
    tunnel,
    line: `${method} ${url}`,
    peer: {
      remoteAddress: remote,
      remotePort: Number(remotePort ?? 0),
      localAddress: serverAddr || '127.0.0.1',
      localPort: Number.isInteger(port) ? port : 0,
      encrypted: https,
    },
  };
}
