import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { getPeerCred } from '../posix';
import { log } from '../log';
import { Registry } from '../pool/registry';
import { StatusWeb } from '../status/web';
import { ApacheConn } from './apache-conn';

export interface ListenOptions {
  socketPath: string;
  /** uids allowed to connect besides root and lodged's own. */
  allowUids: number[];
  /** group that owns the socket file, so Apache's children may open it. */
  socketGid?: number;
}

/**
 * The unix socket mod_lodge connects to. The file mode keeps strangers out and
 * SO_PEERCRED checks every peer again: only root, lodged's own user and the Apache
 * user may send requests, since a request names the uid an app runs as.
 */
export async function listen(opts: ListenOptions, registry: Registry, status?: StatusWeb): Promise<net.Server> {
  await removeStaleSocket(opts.socketPath);
  fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true, mode: 0o755 });
  const allowed = new Set([0, process.getuid!(), ...opts.allowUids]);
  const refusals = new RefusalLog();
  let counter = 0;
  const server = net.createServer((socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    let peer = `connection ${++counter}`;
    let cred: { pid: number; uid: number; gid: number };
    try {
      cred = getPeerCred(fd);
      peer = `apache pid ${cred.pid} (uid ${cred.uid})`;
      if (!allowed.has(cred.uid)) {
        // Closed before a byte is read: whoever it is, a tenant that got past the
        // socket's mode (a member of Apache's group, say) learns nothing.
        socket.destroy();
        refusals.note(cred.uid, cred.pid);
        return;
      }
    } catch (err) {
      log.error(`cannot check the peer of a connection: ${(err as Error).message}; refused`);
      socket.destroy();
      return;
    }
    socket.setNoDelay?.(true);
    new ApacheConn(socket, registry, peer, status, { uid: cred.uid, gid: cred.gid });
  });
  server.on('error', (err) => log.error(`socket ${opts.socketPath}: ${err.message}`));
  checkSocketDir(path.dirname(opts.socketPath));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // bind(2) happens inside listen(), synchronously: under this umask the socket is
    // never, even for an instant, open to more than its owner before the chmod below.
    const umask = process.umask(0o177);
    try {
      server.listen(opts.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  if (opts.socketGid !== undefined && process.getuid!() === 0) {
    fs.chownSync(opts.socketPath, 0, opts.socketGid);
    fs.chmodSync(opts.socketPath, 0o660);
  } else {
    fs.chmodSync(opts.socketPath, 0o600);
  }
  return server;
}

// Whoever may write the socket's folder may put a socket of their own in its place
// and read every request Apache sends (unless the sticky bit protects it, as in /tmp).
function checkSocketDir(dir: string): void {
  const st = fs.statSync(dir);
  if ((st.mode & 0o022) && !(st.mode & 0o1000)) {
    log.warn(`the socket's folder ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): anyone who may write it can take the socket's place`);
  }
  if (st.uid !== process.getuid!() && st.uid !== 0) {
    log.warn(`the socket's folder ${dir} belongs to uid ${st.uid}, who can take the socket's place`);
  }
}

/** A peer that keeps knocking is logged once a minute, with how often it tried. */
const REFUSAL_LOG_EVERY_MS = 60_000;

class RefusalLog {
  private readonly seen = new Map<number, { at: number; quiet: number }>();

  note(uid: number, pid: number): void {
    const now = Date.now();
    const s = this.seen.get(uid);
    if (s && now - s.at < REFUSAL_LOG_EVERY_MS) {
      s.quiet++;
      return;
    }
    const more = s?.quiet ? ` (and ${s.quiet} more from uid ${uid} in the last minute)` : '';
    log.warn(`refused a connection from pid ${pid} uid ${uid}: only root and the Apache user may connect${more}`);
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(uid, { at: now, quiet: 0 });
  }
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
