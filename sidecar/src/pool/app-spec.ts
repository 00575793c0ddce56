import { AppLimits } from '../config/schema';
import { Settings } from '../config/load';
import { decodePairs } from '../protocol/frames';
import { ProtocolError } from '../errors';
import { log } from '../log';
import type { ShareAsked } from './tenant-share';

/** What an APP frame asks for, after the host's caps were applied. */
export interface AppSpec {
  root: string;
  kind: 'wsgi';
  entry: string;
  callable: string;
  limits: AppLimits;
  env: Record<string, string>;
  config: string;
  /** The tenant's share as mod_lodge sent it (raw; tenant-share.ts tenantCaps decides). */
  share: ShareAsked;
}

// `tasks` is the host's alone (mod_lodge sends none), but a forged APP frame is clamped too.
const LIMIT_KEYS: Array<keyof AppLimits> = ['timeout', 'memory', 'processes', 'cpu', 'idle', 'tasks'];
const DIRECTIVE: Record<keyof AppLimits, string> = {
  timeout: 'LodgeTimeout', memory: 'LodgeMemory', processes: 'LodgeProcesses', cpu: 'LodgeCPU', idle: 'LodgeIdle', tasks: 'tasks',
};
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Names a tenant may not set: they would change how the runtime itself behaves.
const RESERVED_ENV = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'PYTHONHOME', 'PYTHONPATH']);

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
      if (RESERVED_ENV.has(key)) {
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
  for (const key of LIMIT_KEYS) {
    // The host's cap: lodged's own, lowered by Apache's `LodgeLimit` when it sent one
    // (a request can only ever lower a cap, never raise it).
    const apacheCap = Number(get.get(`limit.${key}`) ?? 0);
    const cap = Number.isFinite(apacheCap) && apacheCap > 0 ? Math.min(settings.limits[key], apacheCap) : settings.limits[key];
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
  return { root, kind, entry, callable, limits, env, config, share: readShare(get) };
}

// --- tenant share pairs (issue 10 item 4): a stand-in until the APP schema reads them ---
/** `apache.workers` and `limit.tenant_*`: positive integers, anything else ignored. */
function readShare(get: Map<string, string>): ShareAsked {
  const num = (k: string) => {
    const v = get.get(k);
    return v !== undefined && /^[1-9]\d{0,15}$/.test(v) ? Number(v) : undefined;
  };
  return {
    requests: num('limit.tenant_requests'),
    processes: num('limit.tenant_processes'),
    memory: num('limit.tenant_memory'),
    apacheWorkers: num('apache.workers'),
  };
}
