/**
 * CPU the Node worker spends per request (not a test: run by hand, as root):
 *
 *     node dist/test/perf/node-worker-cpu.js [N=20000] [lanes...=1 4]
 *
 * With PROF_DIR set (a folder the tenant may write), the worker writes a CPU profile there.
 *
 * The real runtime started by lodge-spawn as a tenant (as test/node-lanes.test.ts does),
 * a hello app, and the script in lodged's place: each lane gets a REQ (the pairs mod_lodge
 * sends for a browser's GET) and BODY_END, the next once the END came. The worker's
 * utime+stime (/proc/PID/stat) before and after N requests, divided by N.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { StdioOptions, execFileSync, spawn } from 'node:child_process';
import { FrameReader } from '../../sidecar/src/protocol/frame-reader';
import { BODY_END_FRAME, FrameType, encodeFrame, encodePairs } from '../../sidecar/src/protocol/frames';
import { LANE_FD_FIRST, WORKER_FD } from '../../sidecar/src/protocol/constants';
import { CLK_TCK, socketPair } from '../../sidecar/src/posix';
import { createUser, removeUser } from '../helpers/users';

const SPAWN = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'lodge-spawn');
const RUNTIME = path.join(__dirname, '..', '..', 'sidecar', 'src', 'runtime-node', 'main.js');
const APP = `require('http').createServer((req, res) => res.end('hello')).listen(3000);\n`;

const REQ = encodeFrame(
  FrameType.REQ,
  encodePairs([
    ['UNIQUE_ID', 'aGVsbG8gd29ybGQ'],
    ['HTTP_HOST', 'tenant.example'],
    ['HTTP_USER_AGENT', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'],
    ['HTTP_ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['HTTP_ACCEPT_LANGUAGE', 'en-US,en;q=0.5'],
    ['HTTP_ACCEPT_ENCODING', 'gzip, deflate, br'],
    ['HTTP_CONNECTION', 'keep-alive'],
    ['HTTP_COOKIE', 'session=0123456789abcdef; theme=dark'],
    ['HTTP_UPGRADE_INSECURE_REQUESTS', '1'],
    ['HTTP_SEC_FETCH_DEST', 'document'],
    ['HTTP_SEC_FETCH_MODE', 'navigate'],
    ['PATH', '/usr/bin:/bin'],
    ['SERVER_SIGNATURE', ''],
    ['SERVER_SOFTWARE', 'Apache/2.4.58 (Unix)'],
    ['SERVER_NAME', 'tenant.example'],
    ['SERVER_ADDR', '127.0.0.1'],
    ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ['DOCUMENT_ROOT', '/home/tenant/public_html'],
    ['REQUEST_SCHEME', 'http'],
    ['CONTEXT_PREFIX', ''],
    ['CONTEXT_DOCUMENT_ROOT', '/home/tenant/public_html'],
    ['SERVER_ADMIN', 'webmaster@tenant.example'],
    ['SCRIPT_FILENAME', '/home/tenant/public_html/server.js'],
    ['REMOTE_PORT', '51234'],
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_METHOD', 'GET'],
    ['QUERY_STRING', ''],
    ['REQUEST_URI', '/hello'],
    ['SCRIPT_NAME', ''],
    ['PATH_INFO', '/hello'],
  ]),
);

/** utime and stime in microseconds. */
function cpuUs(pid: number): [number, number] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [(Number(f[11]) * 1e6) / CLK_TCK, (Number(f[12]) * 1e6) / CLK_TCK];
}

let errors = 0;

/** One lane from lodged's side: request after request until `left()` says none is left. */
function drive(sock: net.Socket, take: () => boolean, done: () => void): void {
  const reader = new FrameReader((type) => {
    if (type !== FrameType.END && type !== FrameType.ERROR) return;
    if (type === FrameType.ERROR) errors++;
    if (take()) sock.write(Buffer.concat([REQ, BODY_END_FRAME]));
    else done();
  });
  sock.on('data', (c: Buffer) => reader.push(c));
  if (take()) sock.write(Buffer.concat([REQ, BODY_END_FRAME]));
  else done();
}

async function run(uid: number, gid: number, appDir: string, count: number, n: number): Promise<number> {
  const pairs = Array.from({ length: count }, () => socketPair());
  const stdio: StdioOptions = Array.from({ length: count > 1 ? LANE_FD_FIRST + count - 1 : WORKER_FD + 1 }, (_, i) => (i === 2 ? 'pipe' : 'ignore'));
  pairs.forEach(([, theirs], i) => (stdio[i === 0 ? WORKER_FD : LANE_FD_FIRST + i - 1] = theirs));
  const child = spawn(SPAWN, ['--uid', String(uid), '--gid', String(gid), '--', process.execPath, ...(process.env.PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF_DIR}`] : []), RUNTIME], { cwd: '/', env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' }, stdio });
  for (const [, theirs] of pairs) fs.closeSync(theirs);
  child.stderr!.on("data", (d: Buffer) => process.stderr.write(d));
  const socks = pairs.map(([mine]) => new net.Socket({ fd: mine, readable: true, writable: true, allowHalfOpen: true }));
  const ready = new Promise<void>((resolve) => {
    const r = new FrameReader((type) => (type === FrameType.READY ? resolve() : undefined));
    socks[0].on('data', (c: Buffer) => r.push(c));
  });
  socks[0].write(encodeFrame(FrameType.START, encodePairs([['root', appDir], ['entry', 'server.js'], ['log', 'logs/lodge.log'], ['lanes', String(count)]])));
  const exited = new Promise((r) => child.on('exit', r));
  await Promise.race([ready, exited.then(() => Promise.reject(new Error('the worker exited before READY (see logs/lodge.log)')))]);
  socks[0].removeAllListeners('data');
  const pass = async (total: number): Promise<void> => {
    let left = total;
    const lanes = Promise.all(socks.map((s) => new Promise<void>((resolve) => drive(s, () => left-- > 0, resolve))));
    await Promise.race([lanes, exited.then(() => Promise.reject(new Error('the worker exited in the middle of the run (see logs/lodge.log)')))]);
    for (const s of socks) s.removeAllListeners('data');
  };
  await pass(2000); // warm up
  const before = cpuUs(child.pid!);
  const t0 = process.hrtime.bigint();
  await pass(n);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3;
  const after = cpuUs(child.pid!);
  const [user, sys] = [after[0] - before[0], after[1] - before[1]];
  const used = user + sys;
  for (const s of socks) s.destroy();
  await exited;
  process.stdout.write(`lanes=${count} n=${n}: ${(used / n).toFixed(1)} us CPU/request (user ${(user / n).toFixed(1)}, system ${(sys / n).toFixed(1)}), ${(wall / n).toFixed(1)} us wall/request${errors ? `, ${errors} ERROR frames` : ''}\n`);
  return used / n;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20000);
  const laneCounts = process.argv.slice(3).map(Number);
  const user = createUser('lodgepf');
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-perf-'));
  fs.writeFileSync(path.join(appDir, 'server.js'), APP);
  fs.chmodSync(appDir, 0o755);
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, appDir]);
  try {
    for (const count of laneCounts.length ? laneCounts : [1, 4]) await run(user.uid, user.gid, appDir, count, n);
  } finally {
    await removeUser(user);
    fs.rmSync(appDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
