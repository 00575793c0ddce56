import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Socket } from 'node:net';
import { socketPair } from '../posix';
import { AppSpec } from './app-spec';
import { Identity } from './ownership';

// dist/sidecar/src/pool/worker-process.js -> <root>/sidecar/runtimes
const RUNTIME_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'sidecar', 'runtimes');
export const WSGI_RUNTIME = path.join(RUNTIME_DIR, 'wsgi_worker.py');

/** Bytes read from a worker's socket at a time (READY, FAIL; responses lodged carries). */
const READ_SIZE = 64 * 1024;

export interface SpawnOptions {
  python: string;
  tenantLog: string;
  asRoot: boolean;
}

/** A started runtime and lodged's end of its socket (the worker's fd 3). */
export interface WorkerProcess {
  child: ChildProcess;
  socket: Socket;
  /** The descriptor under `socket`, which a GRANT lends to mod_lodge. */
  fd: number;
}

/**
 * Starts the app's runtime: a clean environment, a process group of its own (so a
 * timeout kills the worker and what it started), stderr piped (until the runtime
 * opens the tenant's log, it tells why python itself could not start). `onData` gets
 * what the worker sends, in chunks it may keep.
 */
export function startWorkerProcess(spec: AppSpec, identity: Identity, opts: SpawnOptions, extraArgs: string[], onData: (chunk: Buffer) => void): WorkerProcess {
  const args = ['-I', WSGI_RUNTIME, '--root', spec.root, '--entry', spec.entry, '--log', opts.tenantLog];
  if (spec.callable) args.push('--callable', spec.callable);
  if (opts.asRoot) args.push('--uid', String(identity.uid), '--gid', String(identity.gid));
  args.push(...extraArgs);
  // A socket pair of our own rather than spawn's 'pipe': lodged's end must be a
  // socket whose reading stops the moment it is paused (onread), because while
  // mod_lodge borrows it the bytes on it are mod_lodge's to read.
  const [mine, theirs] = socketPair();
  let child: ChildProcess;
  try {
    child = spawn(opts.python, args, {
      cwd: '/',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', ...spec.env },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', theirs],
    });
  } catch (err) {
    fs.closeSync(mine);
    throw err;
  } finally {
    fs.closeSync(theirs);
  }
  // One buffer read into again and again, what came copied out (the frame reader
  // keeps slices): cheaper than a fresh 64 KiB buffer per read for the small
  // responses lodged carries; apps with large responses lend their workers instead.
  const into = Buffer.allocUnsafe(READ_SIZE);
  const socket = new Socket({
    fd: mine,
    readable: true,
    writable: true,
    onread: { buffer: into, callback: (n: number) => onData(Buffer.from(into.subarray(0, n))) },
  } as ConstructorParameters<typeof Socket>[0]);
  return { child, socket, fd: mine };
}
