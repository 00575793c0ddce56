import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { apache24Conf } from './apache-conf';
import { Tenant, findTenants } from './tenants';

// dist/sidecar/src/sandbox -> repository root
const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const LODGED = path.join(REPO, 'dist', 'sidecar', 'src', 'main.js');
export const MODULE_24 = path.join(REPO, 'build', 'apache24', 'mod_lodge.so');
const APACHE_BIN = '/usr/sbin/apache2';

export interface SandboxOptions {
  root: string;
  port: number;
  /** Extra lodged settings (merged over the sandbox's own socket and log). */
  lodged?: Record<string, unknown>;
  /** Keep the run directory after stop (for looking at the logs). */
  keep?: boolean;
  logLevel?: string;
}

export interface Sandbox {
  runDir: string;
  port: number;
  tenants: Tenant[];
  socket: string;
  errorLog: string;
  lodgedLog: string;
  apache: ChildProcess;
  lodged: ChildProcess;
  url(tenant: string, p?: string): string;
  stopLodged(): Promise<void>;
  startLodged(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts lodged and a private Apache 2.4 serving every tenant folder of `root`. */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const root = fs.realpathSync(opts.root);
  const tenants = findTenants(root);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-sandbox-'));
  fs.chmodSync(runDir, 0o755); // Apache's children (www-data) reach the socket here
  const asRoot = process.getuid!() === 0;
  const socket = path.join(runDir, 'lodged.sock');
  const lodgedLog = path.join(runDir, 'lodged.log');
  const errorLog = path.join(runDir, 'error.log');
  const lodgedConf = path.join(runDir, 'lodged.json');
  fs.writeFileSync(lodgedConf, JSON.stringify({ socket, log: lodgedLog, ...opts.lodged }, null, 2));

  const indexDir = path.join(runDir, 'index');
  fs.mkdirSync(indexDir);
  fs.writeFileSync(path.join(indexDir, 'index.html'), indexPage(tenants, opts.port));
  const conf = path.join(runDir, 'httpd.conf');
  fs.writeFileSync(conf, apache24Conf({
    runDir, port: opts.port, modulePath: MODULE_24, socket, tenants, indexDir,
    user: asRoot ? 'www-data' : undefined, group: asRoot ? 'www-data' : undefined, logLevel: opts.logLevel,
  }));

  const children: ChildProcess[] = [];
  const startLodged = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, [LODGED, '--config', lodgedConf], { stdio: ['ignore', 'inherit', 'inherit'] });
    children.push(child);
    await waitFor(() => fs.existsSync(socket) && child.exitCode === null, 10_000, () => `lodged did not start (see ${lodgedLog})`);
    return child;
  };
  let lodged: ChildProcess;
  let apache: ChildProcess;
  try {
    lodged = await startLodged();
    apache = spawn(APACHE_BIN, ['-f', conf, '-DFOREGROUND'], { stdio: ['ignore', 'inherit', 'inherit'] });
    children.push(apache);
    await waitFor(async () => apache.exitCode === null && (await portOpen(opts.port)), 10_000, () => `Apache did not start: ${tail(errorLog)}`);
  } catch (err) {
    for (const c of children) await stopChild(c);
    if (!opts.keep) fs.rmSync(runDir, { recursive: true, force: true });
    throw err;
  }

  const sandbox: Sandbox = {
    runDir, port: opts.port, tenants, socket, errorLog, lodgedLog, apache,
    get lodged() { return lodged; },
    url: (tenant, p = '/') => `http://${tenant}.localhost:${opts.port}${p}`,
    async stopLodged() {
      await stopChild(lodged);
    },
    async startLodged() {
      lodged = await startLodged();
    },
    async stop() {
      await stopChild(apache);
      await stopChild(lodged);
      if (!opts.keep) fs.rmSync(runDir, { recursive: true, force: true });
    },
  };
  return sandbox;
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

function portOpen(port: number): Promise<boolean> {
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
