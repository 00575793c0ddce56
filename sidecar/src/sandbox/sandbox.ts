import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { ApacheConfOptions, apache13Conf, apache24Conf } from './apache-conf';
import { Tenant, findTenants } from './tenants';

// dist/sidecar/src/sandbox -> repository root
const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const LODGED = path.join(REPO, 'dist', 'sidecar', 'src', 'main.js');
export const MODULE_24 = path.join(REPO, 'build', 'apache24', 'mod_lodge.so');
export const MODULE_13 = path.join(REPO, 'build', 'apache13', 'mod_lodge.so');
const APACHE_BIN = '/usr/sbin/apache2';

export type ApacheVersion = '2.4' | '1.3';

/** How to run one Apache version here: its binary, its mod_lodge, its config. */
export interface ApacheServer {
  version: ApacheVersion;
  bin: string;
  modulePath: string;
  conf(o: ApacheConfOptions): string;
  /** Arguments that keep the parent in the foreground, its children under it. */
  args(conf: string): string[];
}

// apxs is a Perl script: each test file asks, so ask each question once.
const apxsAnswers = new Map<string, string>();

/**
 * Apache 2.4 is Debian's; Apache 1.3 is whatever APXS13 names (its httpd is
 * `apxs -q SBINDIR`/`TARGET`), with the module built from the same sources by
 * scripts/build.js. Throws, saying what is missing, when the version cannot run.
 */
export function findApache(version: ApacheVersion): ApacheServer {
  if (version === '2.4') {
    return { version, bin: APACHE_BIN, modulePath: MODULE_24, conf: apache24Conf, args: (conf) => ['-f', conf, '-DFOREGROUND'] };
  }
  const apxs = process.env.APXS13;
  if (!apxs) throw new Error('Apache 1.3: APXS13 is not set (it names the apxs of an Apache 1.3 installation)');
  const query = (name: string) => {
    const key = `${apxs} ${name}`;
    let answer = apxsAnswers.get(key);
    if (answer === undefined) {
      try {
        answer = execFileSync(apxs, ['-q', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
      } catch (err) {
        throw new Error(`Apache 1.3: APXS13=${apxs} is not a working apxs (apxs -q ${name}: ${(err as Error).message.split('\n')[0]})`);
      }
      apxsAnswers.set(key, answer);
    }
    return answer;
  };
  // Only 2.x ships ap_release.h (native/apache/build.sh tells them apart the same way).
  if (fs.existsSync(path.join(query('INCLUDEDIR'), 'ap_release.h'))) {
    throw new Error(`Apache 1.3: APXS13=${apxs} belongs to Apache 2.x; it must name the apxs of an Apache 1.3`);
  }
  const bin = path.join(query('SBINDIR'), query('TARGET'));
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`Apache 1.3: ${bin} (from APXS13=${apxs}) is not an executable httpd`);
  }
  if (!fs.existsSync(MODULE_13)) {
    throw new Error(`Apache 1.3: mod_lodge for 1.3 is not built (${MODULE_13}); run \`node scripts/build.js\` with APXS13 set`);
  }
  // -F: no fork into the background; 1.3 still makes itself a session leader.
  return { version, bin, modulePath: MODULE_13, conf: apache13Conf, args: (conf) => ['-F', '-f', conf] };
}

/** Why `version` cannot run here, or undefined when it can. */
export function apacheMissing(version: ApacheVersion): string | undefined {
  try {
    findApache(version);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Who runs lodged: Apache (`LodgeDaemon on`, as a host that installs only the
 * module), or the sandbox itself, beside an Apache with `LodgeDaemon off` (as a
 * host whose lodged is a systemd service), which can then stop and start it.
 */
export type LodgedRunner = 'apache' | 'sandbox';

export interface SandboxOptions {
  root: string;
  port: number;
  /** Extra lodged settings (merged over the sandbox's own socket, log and pid file). */
  lodged?: Record<string, unknown>;
  /** Who runs lodged (default 'apache'). */
  daemon?: LodgedRunner;
  /** Keep the run directory after stop (for looking at the logs). */
  keep?: boolean;
  logLevel?: string;
  /** Which Apache serves the tenants (default 2.4). */
  apache?: ApacheVersion;
  /** More host directives for Apache's server config. */
  hostDirectives?: string[];
  /** Apache writes an access log in the run directory (default true). */
  accessLog?: boolean;
  /** Apache 2.4 loads only the modules Lodge needs (apache-conf.ts: bare). */
  bare?: boolean;
}

/** lodged as the sandbox knows it. */
export interface LodgedHandle {
  /** From the pid file lodged writes once it listens (it stays behind a lodged that was killed). */
  readonly pid: number | undefined;
  /** The process, when the sandbox runs lodged itself. */
  readonly child: ChildProcess | undefined;
}

export interface Sandbox {
  apacheVersion: ApacheVersion;
  daemon: LodgedRunner;
  runDir: string;
  port: number;
  tenants: Tenant[];
  socket: string;
  errorLog: string;
  lodgedLog: string;
  lodgedPidFile: string;
  apache: ChildProcess;
  lodged: LodgedHandle;
  url(tenant: string, p?: string): string;
  /**
   * What `apachectl graceful|restart|stop` does: 2.4's `-k`, which signals the pid
   * in PidFile; 1.3's apachectl sends that pid USR1, HUP or TERM itself.
   */
  apachectl(action: 'graceful' | 'restart' | 'stop'): void;
  /** Only with daemon 'sandbox': stop lodged, or start it again. */
  stopLodged(): Promise<void>;
  startLodged(): Promise<void>;
  stop(): Promise<void>;
}

// Apache's stop includes lodged's (SIGTERM, SIGKILL 5 s later): give it that and more.
const APACHE_STOP_GRACE_MS = 15_000;

/**
 * Starts a private Apache (2.4, or 1.3) serving every tenant folder of `root`, and
 * lodged: Apache runs it, or with daemon 'sandbox' the sandbox does.
 */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const server = findApache(opts.apache ?? '2.4');
  const daemon = opts.daemon ?? 'apache';
  const root = fs.realpathSync(opts.root);
  const tenants = findTenants(root);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-sandbox-'));
  fs.chmodSync(runDir, 0o755); // Apache's children (www-data) reach the socket here
  const asRoot = process.getuid!() === 0;
  const socket = path.join(runDir, 'lodged.sock');
  const lodgedLog = path.join(runDir, 'lodged.log');
  const errorLog = path.join(runDir, 'error.log');
  const lodgedConf = path.join(runDir, 'lodged.json');
  const lodgedPidFile = path.join(runDir, 'lodged.pid');
  fs.writeFileSync(lodgedConf, JSON.stringify({ socket, log: lodgedLog, pidFile: lodgedPidFile, ...opts.lodged }, null, 2));
  const lodgedCommand = [process.execPath, LODGED, '--config', lodgedConf];

  const indexDir = path.join(runDir, 'index');
  fs.mkdirSync(indexDir);
  fs.writeFileSync(path.join(indexDir, 'index.html'), indexPage(tenants, opts.port));
  const conf = path.join(runDir, 'httpd.conf');
  fs.writeFileSync(conf, server.conf({
    runDir, port: opts.port, modulePath: server.modulePath, socket, tenants, indexDir,
    user: asRoot ? 'www-data' : undefined, group: asRoot ? 'www-data' : undefined, logLevel: opts.logLevel,
    daemonCommand: daemon === 'apache' ? lodgedCommand : undefined,
    hostDirectives: opts.hostDirectives,
    accessLog: opts.accessLog ?? true,
    bare: opts.bare,
  }));

  // What Apache and lodged print goes to a file of the run, not to our own output: a
  // process of theirs that outlives the sandbox (an Apache child, a lodged finishing its
  // requests) would hold that open, and whoever reads our output (a test runner) would
  // wait for it.
  const consoleLog = path.join(runDir, 'console.log');
  const spawnQuiet = (bin: string, args: string[]): ChildProcess => {
    const out = fs.openSync(consoleLog, 'a');
    try {
      return spawn(bin, args, { stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out);
    }
  };
  const children: ChildProcess[] = [];
  const startLodged = async (): Promise<ChildProcess> => {
    const [node, ...args] = lodgedCommand;
    const child = spawnQuiet(node, args);
    children.push(child);
    await waitFor(() => fs.existsSync(socket) && child.exitCode === null, 10_000, () => `lodged did not start (see ${lodgedLog})`);
    return child;
  };
  const lodgedPid = () => readPid(lodgedPidFile);
  let lodged: ChildProcess | undefined;
  let apache: ChildProcess | undefined;
  try {
    if (daemon === 'sandbox') lodged = await startLodged();
    const httpd = spawnQuiet(server.bin, server.args(conf));
    apache = httpd;
    children.push(httpd);
    await waitFor(async () => {
      if (httpd.exitCode !== null) throw new Error(`Apache ${server.version} exited at start (status ${httpd.exitCode}): ${tail(errorLog)}\n${tail(consoleLog)}`);
      if (daemon === 'apache' && !isAlive(lodgedPid())) return false;
      return portOpen(opts.port);
    }, 15_000, () => `Apache ${server.version} did not start${daemon === 'apache' ? ' with lodged' : ''}: ${tail(errorLog)}\n${tail(lodgedLog)}\n${tail(consoleLog)}`);
  } catch (err) {
    if (apache) await stopApache(apache, server.version);
    for (const c of children) await stopChild(c);
    if (daemon === 'apache') killLeftLodged(lodgedPid(), lodgedConf);
    if (!opts.keep) fs.rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  const httpd = apache;
  const sandboxOnly = (what: string) => {
    if (daemon !== 'sandbox') throw new Error(`${what}: Apache runs lodged here (start the sandbox with daemon 'sandbox')`);
  };

  const sandbox: Sandbox = {
    apacheVersion: server.version, daemon, runDir, port: opts.port, tenants, socket, errorLog, lodgedLog, lodgedPidFile, apache: httpd,
    lodged: {
      get pid() { return daemon === 'sandbox' ? lodged?.pid : lodgedPid(); },
      get child() { return lodged; },
    },
    url: (tenant, p = '/') => `http://${tenant}.localhost:${opts.port}${p}`,
    apachectl(action) {
      if (server.version === '2.4') {
        execFileSync(server.bin, ['-f', conf, '-k', action], { stdio: 'pipe' });
        return;
      }
      const pid = readPid(path.join(runDir, 'httpd.pid'));
      if (pid === undefined) throw new Error(`apachectl ${action}: Apache 1.3 wrote no pid file`);
      process.kill(pid, { graceful: 'SIGUSR1', restart: 'SIGHUP', stop: 'SIGTERM' }[action] as NodeJS.Signals);
    },
    async stopLodged() {
      sandboxOnly('stopLodged');
      if (lodged) await stopChild(lodged);
    },
    async startLodged() {
      sandboxOnly('startLodged');
      lodged = await startLodged();
    },
    async stop() {
      await stopApache(httpd, server.version);
      if (lodged) await stopChild(lodged);
      // Apache stops the lodged it runs; one that outlived it is a bug the tests
      // look for, not something to leave running after them.
      if (daemon === 'apache') killLeftLodged(lodgedPid(), lodgedConf);
      if (!opts.keep) fs.rmSync(runDir, { recursive: true, force: true });
    },
  };
  return sandbox;
}

/** The pid in a pid file, or undefined when there is none (yet). */
export function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether pid names a running process (a zombie counts as gone). */
export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

// Only a process whose command line names this sandbox's lodged.json: a pid file can
// outlive its process, and the pid be someone else's by now.
function killLeftLodged(pid: number | undefined, conf: string): void {
  if (!isAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!cmdline.split('\0').includes(conf)) return;
  signalPid(pid!, 'SIGKILL');
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function indexPage(tenants: Tenant[], port: number): string {
  const items = tenants.map((t) => `<li><a href="http://${t.name}.localhost:${port}/">${t.name}.localhost:${port}</a></li>`).join('\n');
  return `<!doctype html><meta charset="utf-8"><title>Lodge sandbox</title><h1>Lodge sandbox</h1><ul>\n${items}\n</ul>\n`;
}

export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/**
 * Stops a private Apache and every child it has. 2.4's children stay in our process
 * group and die with their parent. 1.3 makes itself a group leader even in the
 * foreground, and forks spare children in the same turn of its loop in which it
 * sees SIGTERM: such a child may still have the parent's handler when the parent
 * signals the group, ignore it, and keep the parent waiting (1.3 tries again only
 * after 1.4 s, then checks 4 s later). So the group gets SIGTERM again until the
 * parent is gone (1.3 takes a repeated one calmly). A parent that had to be killed
 * leaves its children behind in the group, which still has members then, so its
 * id (the pid of the httpd started here) cannot have been handed out again.
 */
async function stopApache(httpd: ChildProcess, version: ApacheVersion): Promise<void> {
  const pid = httpd.pid;
  if (version !== '1.3' || pid === undefined) return stopChild(httpd, APACHE_STOP_GRACE_MS);
  const again = setInterval(() => signalGroup(pid, 'SIGTERM'), 100);
  try {
    await stopChild(httpd, APACHE_STOP_GRACE_MS);
  } finally {
    clearInterval(again);
  }
  if (httpd.signalCode === 'SIGKILL') signalGroup(pid, 'SIGKILL');
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

async function waitFor(ok: () => boolean | Promise<boolean>, ms: number, why: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(why());
    await new Promise((r) => setTimeout(r, 25));
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return `(no ${file})`;
  }
}
