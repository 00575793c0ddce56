import { z } from 'zod';
import type { ShareSettings } from '../pool/tenant-share';

// lodged's settings. Every key has a default, so lodged runs with no file at all;
// unknown keys are refused so that a typo is an error, not a silent default.

const seconds = z.number().int().positive();
const count = z.number().int().positive();
const bytes = z.union([
  z.number().int().positive(),
  z.string().regex(/^\d+[KMG]?$/i, 'a byte size such as 268435456 or "256M"'),
]);

const appSettings = z
  .object({
    timeout: seconds.describe('seconds a request may go without progress'),
    processes: count.max(1000),
    memory: bytes,
    cpu: seconds,
    idle: seconds,
    /**
     * Processes and threads per tenant (all its apps and workers together): the fork
     * bomb's ceiling. Host-set only; mod_lodge sends no tenant value for it.
     */
    tasks: count.min(8).max(100_000),
    /**
     * Requests one worker process of a Node or ASGI app holds at once (its lanes,
     * PROTOCOL.md); a WSGI worker always holds one.
     */
    concurrency: count.max(64),
  })
  .strict();

/**
 * Each tenant's share of the host (a tenant: a uid, all its apps together), in
 * `limits` only: the host sets it, no tenant asks for it. Absent keys are derived
 * (pool/tenant-share.ts tenantCaps): requests from Apache's worker count, memory from
 * the machine's, both times `tenantShare`; Apache's `LodgeLimit tenant-*` can lower them.
 */
const tenantSettings = z
  .object({
    /** Requests one tenant may hold at once, in flight plus waiting; past it, 503 at once. */
    tenantRequests: count.max(100_000),
    /** Worker processes one tenant may have, over all its apps. */
    tenantProcesses: count.max(10_000),
    /** The memory limit of the tenant's own cgroup (memory.max / memory.limit_in_bytes). */
    tenantMemory: bytes,
    /** The fraction of Apache's workers and of the machine's memory a derived share is. */
    tenantShare: z.number().gt(0).max(1),
  })
  .strict();

/** One in four: three tenants flooding at once still leave a quarter for the rest. */
export const DEFAULT_TENANT_SHARE = 0.25;

const absolute = z.string().startsWith('/', 'an absolute path');

export const configSchema = z
  .object({
    socket: absolute.default('/run/lodge/lodged.sock'),
    apacheUser: z.string().min(1).default('www-data'),
    python: absolute.default('/usr/bin/python3'),
    /** The node that runs tenants' Node apps (LodgeApp node): the host's, never the tenant's. */
    node: absolute.default('/usr/bin/node'),
    /** Apps whose directory's owner uid, or group gid, is below this are refused. */
    minUid: z.number().int().min(1).default(1000),
    /**
     * Folders app directories must be inside (suEXEC's docroot); the default, the
     * whole tree, leaves it to ownership. A path matches at a '/' boundary.
     */
    allowedRoots: z.array(absolute.refine((p) => !p.split('/').includes('..'), 'a path without ..')).min(1).default(['/']),
    /**
     * How the watchdogs use cgroups: 'auto' takes each controller from cgroup v2 when
     * the kernel offers it there, else from its v1 hierarchy; 'v1' or 'v2' keep to one;
     * 'off' uses rlimits, process groups and sampling only.
     */
    cgroups: z.enum(['auto', 'v1', 'v2', 'off']).default('auto'),
    /** Requests that may wait for a worker, per app; past that: 503 + Retry-After. */
    maxQueue: z.number().int().min(0).default(100),
    /** Seconds a request may wait in the queue before it gets 503. */
    queueTimeout: seconds.default(30),
    /** Seconds a SIGTERM waits for requests in flight before workers are stopped. */
    shutdownTimeout: seconds.default(30),
    /** The tenant's log, relative to the app's directory. */
    tenantLog: z.string().min(1).refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'a path inside the app directory').default('logs/lodge.log'),
    /** lodged's own log; stderr when absent. */
    log: absolute.optional(),
    /** Where lodged writes its pid once it listens (for whoever supervises it). */
    pidFile: absolute.optional(),
    /**
     * Apache reaches each app's workers on the app's own socket, lodged asked only for
     * an app it has not reached yet, a full listen queue, or a tenant at its share
     * (PROTOCOL.md, "Straight to the app"): lodged out of the byte path, so that a
     * `kill -9` of it fails no request. Off: every request passes through lodged.
     * Node apps, and ASGI apps with more than one request in flight per worker, are
     * served through lodged either way.
     */
    direct: z.boolean().default(true),
    defaults: appSettings.partial().default({}),
    limits: appSettings.merge(tenantSettings).partial().default({}),
  })
  .strict();

export type LodgedConfigInput = z.input<typeof configSchema>;
export type LodgedConfig = z.output<typeof configSchema>;

export interface AppLimits {
  timeout: number;
  processes: number;
  memory: number;
  cpu: number;
  idle: number;
  tasks: number;
  concurrency: number;
}

export const BUILTIN_DEFAULTS: AppLimits = {
  timeout: 30,
  processes: 4,
  memory: 256 * 1024 * 1024,
  cpu: 0,
  idle: 300,
  tasks: 512,
  concurrency: 10,
};

export const BUILTIN_LIMITS: AppLimits = {
  timeout: 600,
  processes: 16,
  memory: 2 * 1024 * 1024 * 1024,
  cpu: 600,
  idle: 3600,
  // 16 workers of 2 threads each leave room for several hundred child processes.
  tasks: 512,
  concurrency: 64,
};

export type TenantSettingsInput = Partial<z.output<typeof tenantSettings>>;

/** The tenant keys of `limits`, sizes in bytes; absent ones stay absent (derived later). */
export function tenantShareSettings(limits: TenantSettingsInput): ShareSettings {
  return {
    tenantRequests: limits.tenantRequests,
    tenantProcesses: limits.tenantProcesses,
    tenantMemory: limits.tenantMemory !== undefined ? parseBytes(limits.tenantMemory) : undefined,
    tenantShare: limits.tenantShare ?? DEFAULT_TENANT_SHARE,
  };
}

export function parseBytes(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)([KMG]?)$/i.exec(v);
  if (!m) throw new Error(`not a byte size: '${v}'`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}
