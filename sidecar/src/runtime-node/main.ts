/**
 * Lodge's Node.js worker: hosts one tenant's unmodified Node app (anything that makes an
 * http, https or net server and calls listen()), speaking the frame protocol of
 * sidecar/src/protocol/PROTOCOL.md on its lanes: fd 3, and as many more as START says
 * (lane.ts), each carrying one request at a time, all of them at once on the event loop.
 *
 *     lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- node dist/sidecar/src/runtime-node/main.js
 *
 * Already the tenant when it starts; what to load comes in the START frame. Then, as the
 * WSGI worker does: refuses root, applies LodgeEnv, changes to the app's directory, opens
 * the tenant's log, loads the entry (app-loader.ts) with listen() caught (listen-catch.ts),
 * and sends READY once the app has listened (FAIL if it throws first, or never listens);
 * each REQ then becomes a request handed to the app's http server as Node's own request
 * and response objects (handed-exchange.ts), or, for a net server or a WebSocket
 * handshake, one written on an in-process connection (exchange.ts, app-connection.ts). This file holds what is the process's: its phase,
 * START, READY and FAIL (on fd 3), and when it exits.
 *
 * Node built-ins and the protocol's own modules only: nothing here may come from the
 * tenant's node_modules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FrameType, encodeFrame, encodePairs } from '../protocol/frames';
import { BOARD_FD, LANE_FD_FIRST, LISTEN_FD, MESSAGE_TEXT_MAX, WORKER_EXIT_FAIL, WORKER_EXIT_PROTOCOL, WORKER_FD } from '../protocol/constants';
import { AppSocket } from './app-socket';
import { describe, ownModules, runEntry } from './app-loader';
import { catchListen, firstListen } from './listen-catch';
import { singleProcessCluster } from './cluster-single';
import { Lane, LaneHost, Phase } from './lane';
import { exitNow, log, openLog } from './process-io';
import { parseStart } from './start-pairs';

/**
 * How long the app has, once loaded, to call listen(): an app that connects to its
 * database first listens after that. Below lodged's own start timeout (60 s), so that
 * the tenant reads this reason, not lodged's.
 */
const LISTEN_WAIT_MS = 10_000;
/** Seconds a worker whose lodged hung up has to finish the request it holds (the WSGI worker's LEAVE_GRACE). */
const LEAVE_GRACE_MS = 30_000;

let phase: Phase = 'start';
let root = '';
let entry = '';
let graceTimer: NodeJS.Timeout | undefined;
/** The app's own socket, when lodged gave it one (START's `slot`): requests straight from Apache. */
let appSocket: AppSocket | undefined;

function protocolError(msg: string): never {
  log(`protocol error from lodged: ${msg}; exiting`);
  exitNow(WORKER_EXIT_PROTOCOL);
}

const host: LaneHost = {
  phase: () => phase,
  entry: () => entry,
  start,
  protocolError: (msg) => protocolError(msg),
  // A lane of lodged's is free: the app's socket may take the request it held.
  ended: () => appSocket?.resume(),
  hungUp(lane) {
    if (lane.index !== 0) return;
    // Before READY the worker has nobody to tell it is ready: lodged gave it up.
    if (phase !== 'serving') exitNow(0);
    // Nobody supervises the worker any more: what the other lanes hold has LEAVE_GRACE_MS,
    // and the app's socket is left to the workers of the next lodged.
    appSocket?.stop();
    graceTimer ??= setTimeout(() => exitNow(0), LEAVE_GRACE_MS).unref();
  },
  closed: () => leaveWhenDone(),
};

/** Requests in hand, on lodged's lanes and from the app's socket. */
function busy(): boolean {
  return lanes.some((l) => l.busy) || (appSocket?.open ?? 0) > 0;
}

// lodged closed every lane (the worker is retired, or lodged is gone): nothing new comes,
// and the worker exits once the connections from the app's socket are answered.
function leaveWhenDone(): void {
  if (!lanes.every((l) => l.isClosed)) return;
  appSocket?.stop();
  if (!appSocket?.open) exitNow(0);
}

/** Lane 0 is fd 3, where START comes; START says how many more there are. */
const lanes: Lane[] = [new Lane(0, WORKER_FD, host)];

process.on('SIGTERM', () => {
  if (phase !== 'serving' || !busy()) exitNow(0);
  appSocket?.stop();
  for (const l of lanes) l.leave();
});

// READY and FAIL go out synchronously: FAIL is followed by the exit, and READY must be
// on its way before anything the app writes. fd 3 is non-blocking; both are small.
function sendNow(frame: Buffer): void {
  let at = 0;
  while (at < frame.length) {
    try {
      at += fs.writeSync(WORKER_FD, frame, at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') exitNow(0); // lodged is gone
      throw err;
    }
  }
}

/** Tells lodged why the app cannot run, then exits. */
function fail(msg: string): never {
  log(`cannot start: ${msg}`);
  sendNow(encodeFrame(FrameType.FAIL, Buffer.from(msg, 'utf8').subarray(0, MESSAGE_TEXT_MAX)));
  exitNow(WORKER_EXIT_FAIL);
}

// Lane i of START's `lanes` is fd LANE_FD_FIRST + i - 1. A number lodged did not give as a
// socket is refused before anything reads it: it may be one of node's own descriptors.
function openLanes(count: number): void {
  for (let i = 1; i < count; i++) {
    const fd = LANE_FD_FIRST + i - 1;
    let isSocket = false;
    try {
      isSocket = fs.fstatSync(fd).isSocket();
    } catch {
      // not open
    }
    if (!isSocket) protocolError(`START: lanes=${count}, but fd ${fd} (lane ${i}) is not a socket`);
    lanes.push(new Lane(i, fd, host));
  }
}

// START's `slot` comes with the app's socket (LISTEN_FD) and its scoreboard (BOARD_FD).
function openAppSocket(count: number, slot: number): void {
  for (const [fd, what] of [[LISTEN_FD, "the app's socket"], [BOARD_FD, 'the scoreboard']] as const) {
    let st: fs.Stats | undefined;
    try {
      st = fs.fstatSync(fd);
    } catch {
      // not open
    }
    if (!st || (fd === LISTEN_FD ? !st.isSocket() : !st.isFile())) protocolError(`START: slot=${slot}, but fd ${fd} (${what}) is not one`);
  }
  try {
    appSocket = new AppSocket(count, slot, { entry: () => entry, lanesBusy: () => lanes.filter((l) => l.busy).length, closed: () => leaveWhenDone() });
  } catch (err) {
    protocolError(`START: slot=${slot}: ${(err as Error).message}`);
  }
}

function start(payload: Buffer): void {
  let opts: ReturnType<typeof parseStart>;
  try {
    opts = parseStart(payload);
  } catch (err) {
    protocolError(`START: ${(err as Error).message}`);
  }
  phase = 'loading';
  openLanes(opts.lanes);
  if (opts.slot !== undefined) openAppSocket(opts.lanes, opts.slot);
  root = opts.root;
  entry = opts.entry;
  if (path.isAbsolute(entry) || entry.split('/').includes('..')) fail(`${entry}: the app file must be inside the app directory`);
  // lodge-spawn makes the tenant before exec; a runtime started any other way as root
  // must not load anybody's code.
  if (process.geteuid!() === 0 || process.getegid!() === 0) fail(`${entry}: refusing to run application code as root`);
  // The app's own environment, which its child processes inherit: the tenant's to
  // choose, now that nothing running as root reads it.
  Object.assign(process.env, opts.env);
  try {
    process.chdir(root);
  } catch (err) {
    fail(`${entry}: cannot start: ${(err as Error).message}`);
  }
  root = process.cwd();
  try {
    openLog(opts.log);
  } catch (err) {
    fail(`${entry}: cannot open the log ${opts.log}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!fs.existsSync(path.join(root, entry))) fail(`${entry}: no such file in the app directory`);
  load();
}

function load(): void {
  // While the app loads, lodged's sockets do not keep the worker alive: an app that
  // leaves nothing to wait for without listening is seen at once ('beforeExit').
  for (const l of lanes) l.ref(false);
  process.on('uncaughtException', onUncaught);
  process.on('beforeExit', () => {
    if (phase === 'loading') fail(`${entry} finished loading without calling listen() on a server`);
  });
  const timer = setTimeout(() => fail(`${entry} did not call listen() on a server within ${LISTEN_WAIT_MS / 1000} s of starting`), LISTEN_WAIT_MS);
  timer.unref();
  // The rest of the module that listened (routes set up after listen(), say) runs
  // before the first request: READY goes on the turn of the loop after listen().
  void firstListen().then(() =>
    setImmediate(() => {
      clearTimeout(timer);
      ready();
    }),
  );
  catchListen();
  singleProcessCluster();
  runEntry(root, entry);
}

function ready(): void {
  if (phase !== 'loading') return;
  phase = 'serving';
  const kv: Array<[string, string]> = [['pid', String(process.pid)]];
  // accepts: the worker serves the app's socket, so lodged may send mod_lodge there.
  if (appSocket) kv.push(['accepts', '1']);
  for (const f of ownModules(root)) kv.push(['file', Buffer.from(f, 'utf8').toString('latin1')]);
  sendNow(encodeFrame(FrameType.READY, encodePairs(kv)));
  for (const l of lanes) l.ref(true);
  appSocket?.start();
}

// The stack for the tenant's log without the runtime's frames: they are the same in every
// stack and only hide where the tenant's code went wrong.
function ownStack(err: unknown): string {
  if (!(err instanceof Error) || !err.stack) return String(err);
  return err.stack
    .split('\n')
    .filter((l) => !l.includes(__dirname))
    .join('\n');
}

// An exception nobody caught (or a rejection nobody handled): while loading, the app
// cannot start (FAIL says where); later, the worker ends as `node` would (status 1) and
// lodged answers the request in hand with 502. An app with its own handler keeps it.
function onUncaught(err: unknown, origin: string): void {
  const what = origin === 'unhandledRejection' ? 'unhandled promise rejection' : 'uncaught exception';
  log(`${what}${busy() ? ' during a request' : ''}:\n${ownStack(err)}`);
  if (phase !== 'serving') fail(`${describe(err, root, entry)} (${what})`);
  if (process.listenerCount('uncaughtException') > 1) return;
  log(`the worker exits (status 1) after the ${what}`);
  exitNow(1);
}
