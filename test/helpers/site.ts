import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { ApacheVersion, LodgedRunner, Sandbox, apacheMissing, startSandbox } from '../../sidecar/src/sandbox/sandbox';
import { Reply, RequestOptions, request } from './http';
import { TestUser, createUser, removeUser } from './users';

/** A tenant's files: path relative to the tenant's folder -> content. */
export type Files = Record<string, string | Buffer>;

export interface Site {
  sb: Sandbox;
  apache: ApacheVersion;
  root: string;
  users: Record<string, TestUser>;
  get(tenant: string, p: string, opts?: RequestOptions): Promise<Reply>;
  tenantLog(tenant: string, app?: string): string;
  errorLog(): string;
  lodgedLog(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function writeFiles(dir: string, files: Files): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    fs.writeFileSync(p, content, { mode: 0o644 });
  }
}

/**
 * The Apaches the end-to-end cases run on: 2.4 always, 1.3 when APXS13 names an
 * Apache 1.3 and mod_lodge was built for it.
 */
export function apacheVersions(): ApacheVersion[] {
  return apacheMissing('1.3') === undefined ? ['2.4', '1.3'] : ['2.4'];
}

/**
 * One list of cases, every server: `cases` declares its site and tests once, and
 * runs inside a describe('Apache X') per version in apacheVersions(). A version
 * that cannot run here is one skipped test whose name says why.
 */
export function forEachApache(cases: (apache: ApacheVersion) => void): void {
  const versions = apacheVersions();
  for (const apache of versions) describe(`Apache ${apache}`, () => cases(apache));
  if (!versions.includes('1.3')) test.skip(apacheMissing('1.3') ?? 'Apache 1.3: not available', () => {});
}

export interface SiteOptions {
  /** Who runs lodged: Apache (LodgeDaemon on, the default), or the sandbox, which can stop it. */
  daemon?: LodgedRunner;
  /** More host directives for Apache's server config. */
  hostDirectives?: string[];
}

/**
 * A private host for one test file: a temp folder with one sub-folder per tenant,
 * each owned by a real Unix user created for the run, served by the sandbox on the
 * given Apache.
 */
export async function startSite(tenants: Record<string, Files>, lodged?: Record<string, unknown>, apache: ApacheVersion = '2.4', opts: SiteOptions = {}): Promise<Site> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-test-'));
  fs.chmodSync(root, 0o755);
  const users: Record<string, TestUser> = {};
  for (const [name, files] of Object.entries(tenants)) {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { mode: 0o755 });
    writeFiles(dir, files);
    users[name] = createUser();
    execFileSync('chown', ['-R', `${users[name].uid}:${users[name].gid}`, dir]);
  }
  let sb: Sandbox;
  try {
    sb = await startSandbox({ root, port: await freePort(), lodged, logLevel: 'warn', apache, daemon: opts.daemon, hostDirectives: opts.hostDirectives });
  } catch (err) {
    for (const u of Object.values(users)) await removeUser(u);
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const read = (p: string) => (fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '');
  return {
    sb,
    apache,
    root,
    users,
    get: (tenant, p, opts) => request(sb.port, `${tenant}.localhost`, p, opts),
    tenantLog: (tenant, app = '') => read(path.join(root, tenant, app, 'logs', 'lodge.log')),
    errorLog: () => read(sb.errorLog),
    lodgedLog: () => read(sb.lodgedLog),
    async stop() {
      await sb.stop();
      for (const u of Object.values(users)) await removeUser(u);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Polls until ok() holds (outcomes, not timings: the deadline is only a safety net). */
export async function eventually(ok: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`still not true after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
