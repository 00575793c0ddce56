/**
 * Lodge's Node.js worker: hosts one tenant's unmodified Node app (anything that makes an
 * http, https or net server and calls listen()), one request at a time, speaking the frame
 * protocol of sidecar/src/protocol/PROTOCOL.md on fd 3.
 *
 *     lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- node dist/sidecar/src/runtime-node/main.js
 *
 * Already the tenant when it starts; what to load comes in the START frame. Then, as the
 * WSGI worker does: refuses root, applies LodgeEnv, changes to the app's directory, opens
 * the tenant's log, loads the entry (app-loader.ts) with listen() caught (listen-catch.ts),
 * and sends READY once the app has listened (FAIL if it throws first, or never listens);
 * each REQ then becomes a request on the worker's connection to the app's server
 * (exchange.ts, app-connection.ts).
 *
 * Node built-ins and the protocol's own modules only: nothing here may come from the
 * tenant's node_modules.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FrameError, FrameReader } from '../protocol/frame-reader';
import { FrameType, decodePairs, encodeError, encodeFrame, encodePairs, frameName } from '../protocol/frames';
import { FRAME_MAX, MESSAGE_TEXT_MAX, START_MAX, WORKER_EXIT_FAIL, WORKER_EXIT_PROTOCOL, WORKER_FD } from '../protocol/constants';
import { describe, ownModules, runEntry } from './app-loader';
import { AppConnection } from './app-connection';
import { Exchange, FrameOut } from './exchange';
import { catchListen, firstListen, servingServer } from './listen-catch';
import { singleProcessCluster } from './cluster-single';
import { exitNow, log, openLog } from './process-io';
import { requestHead } from './request-head';

/**
 * How long the app has, once loaded, to call listen(): an app that connects to its
 * database first listens after that. Below lodged's own start timeout (60 s), so that
 * the tenant reads this reason, not lodged's.
 */
const LISTEN_WAIT_MS = 10_000;
/** Seconds a worker whose lodged hung up has to finish the request it holds (the WSGI worker's LEAVE_GRACE). */
const LEAVE_GRACE_MS = 30_000;
const START_KEYS = new Set(['root', 'entry', 'log', 'callable', 'slot']);

type Phase = 'start' | 'loading' | 'serving';
let phase: Phase = 'start';
let root = '';
let entry = '';
let current: Exchange | undefined;
let leaving = false;

const sock = new net.Socket({ fd: WORKER_FD, readable: true, writable: true });

const connection = new AppConnection();

// The frames of one turn of the loop (a small response's HEAD, DATA and END) go out in
// one write: lodged reads them at once instead of waking for each.
let corked = false;
function uncork(): void {
  corked = false;
  sock.uncork();
}

const out: FrameOut = {
  send: (frame) => {
    if (!corked) {
      corked = true;
      sock.cork();
      setImmediate(uncork);
    }
    return sock.write(frame);
  },
  onDrain: (fn) => sock.once('drain', fn),
  pauseInput: () => sock.pause(),
  resumeInput: () => sock.resume(),
};

function protocolError(msg: string): never {
  log(`protocol error from lodged: ${msg}; exiting`);
  exitNow(WORKER_EXIT_PROTOCOL);
}

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

const limit = (type: number): number | undefined => {
  if (phase === 'start') return type === FrameType.START ? START_MAX : undefined;
  if (phase === 'loading') return undefined; // lodged sends nothing before READY
  return type === FrameType.REQ || type === FrameType.BODY || type === FrameType.BODY_END || type === FrameType.ABORT ? FRAME_MAX : undefined;
};

const reader = new FrameReader(onFrame, limit);
sock.on('data', (chunk: Buffer) => {
  try {
    reader.push(chunk);
  } catch (err) {
    if (err instanceof FrameError) protocolError(err.message);
    throw err;
  }
});
sock.on('end', hangUp);
sock.on('error', hangUp);

// lodged closed fd 3: leave now when idle, else once the request in hand is answered
// (nobody watches it any more: LEAVE_GRACE_MS at most).
function hangUp(): void {
  if (!current) exitNow(0);
  leaving = true;
  setTimeout(() => exitNow(0), LEAVE_GRACE_MS).unref();
}

process.on('SIGTERM', () => {
  if (!current || phase !== 'serving') exitNow(0);
  leaving = true;
});

function onFrame(type: number, frame: Buffer): void {
  const payload = frame.subarray(8);
  if (type === FrameType.START) return start(payload);
  switch (type) {
    case FrameType.REQ:
      return request(frame);
    // With no request in hand these are leftovers of the one just answered (lodged and
    // mod_lodge pass the body on until they have seen END), or an ABORT that came after it.
    case FrameType.BODY:
      return current?.body(payload);
    case FrameType.BODY_END:
      return current?.bodyEnd();
    case FrameType.ABORT:
      return current?.abort();
    default:
      protocolError(`${frameName(type)} frame is not expected`);
  }
}

function request(frame: Buffer): void {
  if (current) protocolError('REQ while a request is in hand');
  let pairs: Array<[string, string]>;
  try {
    pairs = decodePairs(frame, 8);
  } catch (err) {
    protocolError(`REQ: ${(err as Error).message}`);
  }
  const head = requestHead(pairs);
  const server = servingServer();
  if (!server) {
    log(`${head.line}: the app closed its server; answered 502`);
    sock.write(encodeError(502, 0, `${entry}: the app closed the server it listened on`));
    return;
  }
  try {
    current = new Exchange(head, server, connection, out, answered);
  } catch (err) {
    // The client's request line or a header is one Node's http client refuses to write.
    log(`${head.line}: cannot be given to the app: ${(err as Error).message}`);
    sock.write(encodeError(400, 0, `${head.line}: ${(err as Error).message}`));
  }
}

function answered(): void {
  current = undefined;
  if (leaving) sock.end(() => exitNow(0));
}

function start(payload: Buffer): void {
  const opts = new Map<string, string>();
  const env: Record<string, string> = {};
  let pairs: Array<[string, string]>;
  try {
    pairs = decodePairs(payload);
  } catch (err) {
    protocolError(`START: ${(err as Error).message}`);
  }
  for (const [k, v] of pairs) {
    // LodgeEnv values are lodged's strings sent as latin-1 (encodePairs), paths Apache's bytes.
    if (k.startsWith('env.')) env[k.slice(4)] = v;
    else if (START_KEYS.has(k)) opts.set(k, Buffer.from(v, 'latin1').toString('utf8'));
    else protocolError(`START: unknown pair '${k}'`);
  }
  for (const k of ['root', 'entry', 'log']) if (!opts.get(k)) protocolError(`START: no ${k}`);
  phase = 'loading';
  root = opts.get('root')!;
  entry = opts.get('entry')!;
  if (path.isAbsolute(entry) || entry.split('/').includes('..')) fail(`${entry}: the app file must be inside the app directory`);
  // lodge-spawn makes the tenant before exec; a runtime started any other way as root
  // must not load anybody's code.
  if (process.geteuid!() === 0 || process.getegid!() === 0) fail(`${entry}: refusing to run application code as root`);
  // The app's own environment, which its child processes inherit: the tenant's to
  // choose, now that nothing running as root reads it.
  Object.assign(process.env, env);
  try {
    process.chdir(root);
  } catch (err) {
    fail(`${entry}: cannot start: ${(err as Error).message}`);
  }
  root = process.cwd();
  try {
    openLog(opts.get('log')!);
  } catch (err) {
    fail(`${entry}: cannot open the log ${opts.get('log')}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!fs.existsSync(path.join(root, entry))) fail(`${entry}: no such file in the app directory`);
  load();
}

function load(): void {
  // While the app loads, lodged's socket does not keep the worker alive: an app that
  // leaves nothing to wait for without listening is seen at once ('beforeExit').
  sock.unref();
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
  for (const f of ownModules(root)) kv.push(['file', Buffer.from(f, 'utf8').toString('latin1')]);
  sendNow(encodeFrame(FrameType.READY, encodePairs(kv)));
  sock.ref();
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
  log(`${what}${current ? ' during a request' : ''}:\n${ownStack(err)}`);
  if (phase !== 'serving') fail(`${describe(err, root, entry)} (${what})`);
  if (process.listenerCount('uncaughtException') > 1) return;
  log(`the worker exits (status 1) after the ${what}`);
  exitNow(1);
}
