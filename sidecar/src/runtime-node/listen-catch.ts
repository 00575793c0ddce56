import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * The servers the app asked to listen, in the order it asked: the first serves Lodge's
 * requests. The app opens no port: net.Server.prototype.listen (which http, https and
 * every framework's server inherit) is replaced before the app is loaded, and records the
 * server instead. What the app sees is a server that listens: the callback and the
 * 'listening' event fire on the next tick, `listening` is true, `address()` answers with
 * what it asked for (127.0.0.1 and its port, or its path), and a second listen(), on the
 * same server or another, is no error (it is recorded, and takes no requests).
 */
const servers: net.Server[] = [];
const waiting: Array<(s: net.Server) => void> = [];

/** The server that takes Lodge's requests, when the app has listened and not closed it. */
export function servingServer(): net.Server | undefined {
  return servers[0];
}

/** Resolves with the first server the app listens on. */
export function firstListen(): Promise<net.Server> {
  if (servers.length) return Promise.resolve(servers[0]);
  return new Promise((resolve) => waiting.push(resolve));
}

/** The event a server takes a connection on: a TLS server's app listens for 'secureConnection' (Apache did the TLS). */
export function connectionEvent(server: net.Server): 'connection' | 'secureConnection' {
  return server instanceof tls.Server ? 'secureConnection' : 'connection';
}

type Asked = { port?: number; path?: string };

// listen(port[, host][, backlog][, cb]), listen(path[, backlog][, cb]), listen(options[, cb]),
// listen(handle[, backlog][, cb]): only the port or path matters, for address().
function asked(args: unknown[]): Asked {
  const a = args[0];
  if (typeof a === 'number') return { port: a };
  if (typeof a === 'string') return /^\d+$/.test(a) ? { port: Number(a) } : { path: a };
  if (a && typeof a === 'object') {
    const o = a as { port?: unknown; path?: unknown };
    if (typeof o.path === 'string') return { path: o.path };
    if (typeof o.port === 'number' || (typeof o.port === 'string' && /^\d+$/.test(o.port))) return { port: Number(o.port) };
  }
  return { port: 0 };
}

export function catchListen(): void {
  net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]): net.Server {
    const cb = args.length && typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as () => void) : undefined;
    const where = asked(args);
    if (cb) this.once('listening', cb);
    if (!servers.includes(this)) {
      servers.push(this);
      pretend(this, where);
    }
    process.nextTick(() => this.emit('listening'));
    if (servers.length === 1) for (const w of waiting.splice(0)) w(this);
    return this;
  } as typeof net.Server.prototype.listen;
}

// What a listening server shows of itself, set on the instance so that nothing else of
// net.Server changes.
function pretend(server: net.Server, where: Asked): void {
  const address = where.path !== undefined ? where.path : { address: '127.0.0.1', family: 'IPv4', port: where.port ?? 0 };
  Object.defineProperty(server, 'listening', { configurable: true, get: () => servers.includes(server) });
  Object.defineProperty(server, 'address', { configurable: true, writable: true, value: () => (servers.includes(server) ? address : null) });
  // close() of a server that never had a handle would call back with ERR_SERVER_NOT_RUNNING;
  // this one stops taking requests (the next server the app listened on takes them, if any).
  const close = server.close;
  Object.defineProperty(server, 'close', {
    configurable: true,
    writable: true,
    value: function (this: net.Server, cb?: (err?: Error) => void) {
      const i = servers.indexOf(server);
      if (i < 0) return close.call(server, cb);
      servers.splice(i, 1);
      (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      process.nextTick(() => {
        cb?.();
        server.emit('close');
      });
      return server;
    },
  });
}
