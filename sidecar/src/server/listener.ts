import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { getPeerCred } from '../posix';
import { log } from '../log';
import { Registry } from '../pool/registry';
import { ApacheConn } from './apache-conn';

export interface ListenOptions {
  socketPath: string;
  /** uids allowed to connect besides root and lodged's own. */
  allowUids: number[];
  /** group that owns the socket file, so Apache's children may open it. */
  socketGid?: number;
}

/** The uid and gid of a local user, or undefined when there is none. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const out = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':');
    return { uid: Number(out[2]), gid: Number(out[3]) };
  } catch {
    return undefined;
  }
}

/**
 * The unix socket mod_lodge connects to. The file mode keeps strangers out and
 * SO_PEERCRED checks every peer again: only root, lodged's own user and the Apache
 * user may send requests, since a request names the uid an app runs as.
 */
export async function listen(opts: ListenOptions, registry: Registry): Promise<net.Server> {
  await removeStaleSocket(opts.socketPath);
  fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true, mode: 0o755 });
  const allowed = new Set([0, process.getuid!(), ...opts.allowUids]);
  let counter = 0;
  const server = net.createServer((socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    let peer = `connection ${++counter}`;
    try {
      const cred = getPeerCred(fd);
      peer = `apache pid ${cred.pid} (uid ${cred.uid})`;
      if (!allowed.has(cred.uid)) {
        log.warn(`refused a connection from pid ${cred.pid} uid ${cred.uid}: only root and the Apache user may connect`);
        socket.destroy();
        return;
      }
    } catch (err) {
      log.error(`cannot check the peer of a connection: ${(err as Error).message}; refused`);
      socket.destroy();
      return;
    }
    socket.setNoDelay?.(true);
    new ApacheConn(socket, registry, peer);
  });
  server.on('error', (err) => log.error(`socket ${opts.socketPath}: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (opts.socketGid !== undefined && process.getuid!() === 0) {
    fs.chownSync(opts.socketPath, 0, opts.socketGid);
    fs.chmodSync(opts.socketPath, 0o660);
  } else {
    fs.chmodSync(opts.socketPath, 0o600);
  }
  return server;
}

// A socket file left by a lodged that died is removed; one that still answers means
// another lodged runs there, and starting a second would steal its requests.
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${p} exists and is not a socket; not touching it`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another lodged is already listening on ${p}`);
  fs.unlinkSync(p);
}
