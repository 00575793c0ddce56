import { ChildProcess, StdioOptions, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Socket } from 'node:net';
import { socketPair } from '../posix';
import { BOARD_FD, LANE_FD_FIRST, LISTEN_FD, WORKER_FD } from '../protocol/constants';
import { FrameType, encodeFrame, encodePairs } from '../protocol/frames';
import { AppSpec, lanesOf } from './app-spec';
import { Identity } from './ownership';

// dist/sidecar/src/pool/worker-process.js -> <root>/sidecar/runtimes
const RUNTIME_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'sidecar', 'runtimes');
export const WSGI_RUNTIME = path.join(RUNTIME_DIR, 'wsgi_worker.py');
export const ASGI_RUNTIME = path.join(RUNTIME_DIR, 'asgi_worker.py');
// dist/sidecar/src/pool/worker-process.js -> dist/sidecar/src/runtime-node/main.js (compiled with lodged)
export const NODE_RUNTIME = path.resolve(__dirname, '..', 'runtime-node', 'main.js');
// dist/sidecar/src/pool/worker-process.js -> <root>/build/Release/lodge-spawn
export const SPAWN_HELPER = path.resolve(__dirname, '..', '..', '..', '..', 'build', 'Release', 'lodge-spawn');

/**
 * The environment every runtime starts with. Fixed: the tenant's LodgeEnv goes in the
 * START frame and is applied by the runtime, once it runs as the tenant, to the app's
 * own environment (os.environ), so that nothing of the tenant's is seen by the
 * dynamic loader or the interpreter while they start.
 */
const RUNTIME_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };

/** Bytes read from a worker's socket at a time (READY, FAIL; responses lodged carries). */
const READ_SIZE = 64 * 1024;
/**
 * One buffer every worker's socket reads into, what came copied out at once (the frame
 * reader keeps slices): cheaper than a fresh 64 KiB buffer per read for the small
 * responses lodged carries (apps with large responses lend their workers instead), and
 * one for all rather than one per worker: reads run one at a time on lodged's thread,
 * and a buffer per worker was 64 KiB of garbage for each worker a burst of cold
 * starts spawned, which the malloc heap kept after the collector freed it.
 */
const readBuffer = Buffer.allocUnsafe(READ_SIZE);

export interface SpawnOptions {
  python: string;
  /** The host's node, for LodgeApp node (lodged.json `node`). */
  node: string;
  tenantLog: string;
  asRoot: boolean;
  /** The app's listening socket (pool.ts), the worker's LISTEN_FD, when the app has one. */
  listenFd?: number;
  /** The app's scoreboard (app-board.ts), the worker's BOARD_FD, and the slot of the worker to start. */
  boardFd?: number;
  boardSlot?: number;
}

/** lodged's end of one of a worker's lanes (PROTOCOL.md, "Lanes"). */
export interface LaneSocket {
  socket: Socket;
  /** The descriptor under `socket`, which a GRANT lends to mod_lodge. */
  fd: number;
}

/** A started runtime and lodged's ends of its lanes (lane 0: the worker's fd 3). */
export interface WorkerProcess {
  child: ChildProcess;
  lanes: LaneSocket[];
}

/**
 * Starts the app's runtime through lodge-spawn, which joins the worker's cgroups and
 * becomes the tenant before it execs the interpreter (see native/spawn/lodge_spawn.c):
 * every argument and the environment here are lodged's own. A process group of its
 * own (so a timeout kills the worker and what it started); stderr piped (until the
 * runtime opens the tenant's log, it tells why python itself could not start).
 * `started(pid)` runs before the runtime learns what to load (rlimits go on first);
 * then the START frame tells it, as the tenant. `onData` gets what the worker sends,
 * in chunks it may keep, with the lane it came on.
 */
export function startWorkerProcess(
  spec: AppSpec,
  identity: Identity,
  opts: SpawnOptions,
  cgroupDirs: string[],
  started: (pid: number) => void,
  onData: (lane: number, chunk: Buffer) => void,
): WorkerProcess {
  const args = cgroupDirs.flatMap((d) => ['--cgroup', d]);
  if (opts.asRoot) args.push('--uid', String(identity.uid), '--gid', String(identity.gid));
  args.push('--', ...runtimeCommand(spec, opts));
  // A socket pair of our own rather than spawn's 'pipe': lodged's end must be a
  // socket whose reading stops the moment it is paused (onread), because while
  // mod_lodge borrows it the bytes on it are mod_lodge's to read.
  const pairs = Array.from({ length: lanesOf(spec) }, () => socketPair());
  // No stdin or stdout; stderr kept (the first lines say why python could not start).
  const stdio: StdioOptions = ['ignore', 'ignore', 'pipe'];
  pairs.forEach(([, theirs], i) => (stdio[i === 0 ? WORKER_FD : LANE_FD_FIRST + i - 1] = theirs));
  if (opts.listenFd !== undefined) stdio[LISTEN_FD] = opts.listenFd;
  if (opts.listenFd !== undefined && opts.boardFd !== undefined && opts.boardSlot !== undefined) stdio[BOARD_FD] = opts.boardFd;
  // No holes: spawn skips an empty slot of the array, and what was meant for fd 6
  // would arrive as the next free descriptor.
  for (let i = 0; i < stdio.length; i++) stdio[i] ??= 'ignore';
  let child: ChildProcess;
  try {
    child = spawn(SPAWN_HELPER, args, {
      cwd: '/',
      env: RUNTIME_ENV,
      detached: true,
      stdio,
    });
  } catch (err) {
    for (const [mine] of pairs) fs.closeSync(mine);
    throw err;
  } finally {
    for (const [, theirs] of pairs) fs.closeSync(theirs);
  }
  const lanes = pairs.map(([mine], i): LaneSocket => ({
    fd: mine,
    socket: new Socket({
      fd: mine,
      readable: true,
      writable: true,
      onread: { buffer: readBuffer, callback: (n: number) => onData(i, Buffer.from(readBuffer.subarray(0, n))) },
    } as ConstructorParameters<typeof Socket>[0]),
  }));
  if (child.pid !== undefined) {
    started(child.pid);
    lanes[0].socket.write(startFrame(spec, opts));
  }
  return { child, lanes };
}

/** The interpreter and runtime that host the app's kind, with lodged's arguments only. */
export function runtimeCommand(spec: AppSpec, opts: SpawnOptions): string[] {
  if (spec.kind === 'node') return [opts.node, NODE_RUNTIME];
  return [opts.python, '-I', spec.kind === 'asgi' ? ASGI_RUNTIME : WSGI_RUNTIME];
}

/** What the runtime is to load, and the tenant's environment for the app. */
export function startFrame(spec: AppSpec, opts: SpawnOptions): Buffer {
  const kv: Array<[string, string]> = [
    ['root', spec.root],
    ['entry', spec.entry],
    ['log', opts.tenantLog],
  ];
  if (spec.callable) kv.push(['callable', spec.callable]);
  // Absent means one: a WSGI worker is never told.
  if (lanesOf(spec) > 1) kv.push(['lanes', String(lanesOf(spec))]);
  if (opts.listenFd !== undefined && opts.boardFd !== undefined && opts.boardSlot !== undefined) kv.push(['slot', String(opts.boardSlot)]);
  for (const [k, v] of Object.entries(spec.env)) kv.push([`env.${k}`, v]);
  return encodeFrame(FrameType.START, encodePairs(kv));
}
