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

// Hop-by-hop (RFC 9110 7.6.1) or set by us; never passed on from the client. The ones
// read for the request itself (Host, X-Forwarded-For, Upgrade, Connection,
// Transfer-Encoding) are taken out of the loop in requestHead first.
const DROPPED = new Set(['HTTP_KEEP_ALIVE', 'HTTP_PROXY_CONNECTION', 'HTTP_TE', 'HTTP_TRAILER', 'HTTP_EXPECT', 'HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_HOST']);

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
 * One pass over the pairs, no map of them: this runs for every request. A name that
 * comes twice counts with its last value (a header keeps its first place).
 */
export function requestHead(pairs: Array<[string, string]>): RequestHead {
  let method, uri, scriptName, pathInfo, query, httpsVar, remoteAddr, remotePort, serverName, serverPort, serverAddr, protocol: string | undefined;
  let contentType, contentLength, hostHeader, xff, upgrade, connection, te: string | undefined;
  // Host first, as a proxy writes it; its value once the pairs are read.
  const headers: Record<string, string> = { Host: '' };
  for (let i = 0; i < pairs.length; i++) {
    const [k, v] = pairs[i];
    if (k.startsWith('HTTP_')) {
      switch (k) {
        case 'HTTP_HOST':
          hostHeader = v;
          break;
        case 'HTTP_X_FORWARDED_FOR':
          xff = v;
          break;
        case 'HTTP_UPGRADE':
          upgrade = v;
          break;
        case 'HTTP_CONNECTION':
          connection = v;
          break;
        case 'HTTP_TRANSFER_ENCODING':
          te = v;
          break;
        default:
          if (!DROPPED.has(k)) headers[headerName(k)] = v;
      }
      continue;
    }
    switch (k) {
      case 'REQUEST_METHOD':
        method = v;
        break;
      case 'REQUEST_URI':
        uri = v;
        break;
      case 'SCRIPT_NAME':
        scriptName = v;
        break;
      case 'PATH_INFO':
        pathInfo = v;
        break;
      case 'QUERY_STRING':
        query = v;
        break;
      case 'HTTPS':
        httpsVar = v;
        break;
      case 'REMOTE_ADDR':
        remoteAddr = v;
        break;
      case 'REMOTE_PORT':
        remotePort = v;
        break;
      case 'SERVER_NAME':
        serverName = v;
        break;
      case 'SERVER_PORT':
        serverPort = v;
        break;
      case 'SERVER_ADDR':
        serverAddr = v;
        break;
      case 'SERVER_PROTOCOL':
        protocol = v;
        break;
      case 'CONTENT_TYPE':
        contentType = v;
        break;
      case 'CONTENT_LENGTH':
        contentLength = v;
        break;
    }
  }
  method ||= 'GET';
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
