import { AppLimits } from '../config/schema';
import { Settings } from '../config/load';
import { decodePairs } from '../protocol/frames';
import { ProtocolError } from '../errors';
import { log } from '../log';

/** What an APP frame asks for, after the host's caps were applied. */
export interface AppSpec {
  root: string;
  kind: 'wsgi';
  entry: string;
  callable: string;
  limits: AppLimits;
  env: Record<string, string>;
  config: string;
  /** The host's cap on each limit for this app (lodged's, lowered by Apache's LodgeLimit). */
  caps: AppLimits;
}

// `tasks` is the host's alone (mod_lodge sends none), but a forged APP frame is clamped too.
const LIMIT_KEYS: Array<keyof AppLimits> = ['timeout', 'memory', 'processes', 'cpu', 'idle', 'tasks'];
const DIRECTIVE: Record<keyof AppLimits, string> = {
  timeout: 'LodgeTimeout', memory: 'LodgeMemory', processes: 'LodgeProcesses', cpu: 'LodgeCPU', idle: 'LodgeIdle', tasks: 'tasks',
};
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Names a tenant may not set: they would change how the runtime itself behaves (the
// dynamic loader's LD_*, the interpreter's PYTHON*), or who the worker says it is.
// The tenant's names never reach a root process in any case (lodge-spawn, START).
const RESERVED_ENV = new Set(['PATH', 'HOME', 'USER', 'LOGNAME']);
const RESERVED_PREFIX = /^(LD_|PYTHON)/;

/**
 * Parses the APP pairs that mod_lodge sent. Nothing in it is trusted: paths are
 * checked for shape here and for ownership in ownership.ts; limits are clamped.
 */
export function parseAppSpec(payload: Buffer, settings: Settings): AppSpec {
  const pairs = decodePairs(payload, 8);
  const get = new Map<string, string>();
  const env: Record<string, string> = {};
  for (const [name, value] of pairs) {
    if (name.startsWith('env.')) {
      const key = name.slice(4);
      if (!ENV_NAME.test(key)) throw new ProtocolError(`LodgeEnv name '${key}' is not a valid variable name`);
      if (!envNameAllowed(key)) {
        log.warn(`${get.get('config') ?? 'an app'}: LodgeEnv ${key} is reserved; ignored`);
        continue;
      }
      env[key] = value;
    } else {
      get.set(name, value);
    }
  }
  const root = get.get('root') ?? '';
  if (!root.startsWith('/') || root.includes('\0') || root.split('/').includes('..')) {
    throw new ProtocolError(`APP root '${root}' is not an absolute path`);
  }
  const kind = get.get('kind');
  if (kind !== 'wsgi') throw new ProtocolError(`app kind '${kind}' is not supported (only 'wsgi')`);
  const entry = get.get('entry') ?? '';
  if (!entry || entry.startsWith('/') || entry.split('/').includes('..') || entry.includes('\0')) {
    throw new ProtocolError(`app file '${entry}' must be a path inside the app directory`);
  }
  const callable = get.get('callable') ?? '';
  if (callable && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(callable)) {
    throw new ProtocolError(`callable '${callable}' is not a Python name`);
  }
  const config = get.get('config') ?? `${root}/.htaccess`;
  const limits = { ...settings.defaults };
  const caps = { ...settings.limits };
  for (const key of LIMIT_KEYS) {
    // The host's cap: lodged's own, lowered by Apache's `LodgeLimit` when it sent one
    // (a request can only ever lower a cap, never raise it).
    const apacheCap = Number(get.get(`limit.${key}`) ?? 0);
    const cap = Number.isFinite(apacheCap) && apacheCap > 0 ? Math.min(settings.limits[key], apacheCap) : settings.limits[key];
    caps[key] = cap;
    if (limits[key] > cap) limits[key] = cap;
    const asked = Number(get.get(key) ?? 0);
    if (!Number.isFinite(asked) || asked <= 0) continue;
    if (asked > cap) {
      log.warn(`${config}: ${DIRECTIVE[key]} ${asked} is over the host's limit; using ${cap}`);
      limits[key] = cap;
    } else {
      limits[key] = asked;
    }
  }
  return { root, kind, entry, callable, limits, env, config, caps };
}

/** A LodgeEnv name the runtime applies (valid, and not one of the reserved names). */
export function envNameAllowed(name: string): boolean {
  return ENV_NAME.test(name) && !RESERVED_ENV.has(name) && !RESERVED_PREFIX.test(name);
}
