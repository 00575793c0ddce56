import { AppLimits } from '../config/schema';
import { Settings } from '../config/load';
import { AppPairs, parseAppPairs } from '../protocol/schemas';
import { tenantLog } from '../log';
import type { ShareAsked } from './tenant-share';
import { hostEvent } from '../status/app-book';
import { LANES_MAX } from '../protocol/constants';

/** What an APP frame asks for, after the host's caps were applied. */
export interface AppSpec {
  root: string;
  kind: 'wsgi' | 'asgi' | 'node';
  entry: string;
  callable: string;
  limits: AppLimits;
  /**
   * The tenant's share the host set in Apache (`LodgeLimit tenant-*`, and Apache's own
   * worker count), as asked: tenant-share.ts tenantCaps clamps them.
   */
  share: ShareAsked;
  env: Record<string, string>;
  config: string;
  /** The host's cap on each limit for this app (lodged's, lowered by Apache's LodgeLimit). */
  caps: AppLimits;
}

// `tasks` is the host's alone (mod_lodge sends none), but a forged APP frame is clamped too.
const LIMIT_KEYS: Array<keyof AppLimits> = ['timeout', 'memory', 'processes', 'cpu', 'idle', 'tasks', 'concurrency'];
const DIRECTIVE: Record<keyof AppLimits, string> = {
  timeout: 'LodgeTimeout', memory: 'LodgeMemory', processes: 'LodgeProcesses', cpu: 'LodgeCPU', idle: 'LodgeIdle', tasks: 'tasks', concurrency: 'LodgeConcurrency',
};
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Names a tenant may not set: they would change how the runtime itself behaves (the
// dynamic loader's LD_*, the interpreter's PYTHON*), or who the worker says it is.
// The tenant's names never reach a root process in any case (lodge-spawn, START).
const RESERVED_ENV = new Set(['PATH', 'HOME', 'USER', 'LOGNAME']);
const RESERVED_PREFIX = /^(LD_|PYTHON)/;

/**
 * Parses the APP pairs that mod_lodge sent (their schema: protocol/schemas.ts).
 * Nothing in it is trusted: paths are checked for shape there and for ownership in
 * ownership.ts; limits are clamped here.
 */
export function parseAppSpec(payload: Buffer, settings: Settings): AppSpec {
  const app = parseAppPairs(payload);
  const { root, kind, entry, callable } = app;
  const config = app.config ?? `${root}/.htaccess`;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(app.env)) {
    if (!envNameAllowed(key)) {
      tenantLog(app.uid ?? -1).warn(`${config}: LodgeEnv ${key} is reserved; ignored`);
      continue;
    }
    env[key] = value;
  }
  const { limits, caps } = clampLimits(app, settings, config);
  return { root, kind, entry, callable, limits, caps, share: shareOf(app), env, config };
}

function clampLimits(app: AppPairs, settings: Settings, config: string): { limits: AppLimits; caps: AppLimits } {
  const limits = { ...settings.defaults };
  const caps = { ...settings.limits };
  for (const key of LIMIT_KEYS) {
    // The host's cap: lodged's own, lowered by Apache's `LodgeLimit` when it sent one
    // (a request can only ever lower a cap, never raise it).
    const apacheCap = app.limit[key] ?? 0;
    const cap = apacheCap > 0 ? Math.min(settings.limits[key], apacheCap) : settings.limits[key];
    caps[key] = cap;
    if (limits[key] > cap) limits[key] = cap;
    const asked = app[key] ?? 0;
    if (asked <= 0) continue;
    // A WSGI worker holds one request whatever it asks (lanesOf): nothing to tell.
    if (asked > cap && !(key === 'concurrency' && app.kind === 'wsgi')) {
      const note = `${config}: ${DIRECTIVE[key]} ${asked} is over the host's limit; using ${cap}`;
      tenantLog(app.uid ?? -1).warn(note);
      hostEvent('clamp', note, app.uid, app.root);
      limits[key] = cap;
    } else {
      limits[key] = Math.min(asked, cap);
    }
  }
  return { limits, caps };
}

function shareOf(app: AppPairs): ShareAsked {
  const share: ShareAsked = {};
  if (app.limit.tenant_requests !== undefined) share.requests = app.limit.tenant_requests;
  if (app.limit.tenant_processes !== undefined) share.processes = app.limit.tenant_processes;
  if (app.limit.tenant_memory !== undefined) share.memory = app.limit.tenant_memory;
  if (app['apache.workers'] !== undefined) share.apacheWorkers = app['apache.workers'];
  return share;
}

/**
 * The requests one worker of the app holds at once (its lanes, PROTOCOL.md): a WSGI
 * worker's thread serves one; a Node or ASGI worker's event loop LodgeConcurrency.
 */
export function lanesOf(spec: Pick<AppSpec, 'kind' | 'limits'>): number {
  if (spec.kind === 'wsgi') return 1;
  return Math.max(1, Math.min(LANES_MAX, spec.limits.concurrency || 1));
}

/** A LodgeEnv name the runtime applies (valid, and not one of the reserved names). */
export function envNameAllowed(name: string): boolean {
  return ENV_NAME.test(name) && !RESERVED_ENV.has(name) && !RESERVED_PREFIX.test(name);
}
