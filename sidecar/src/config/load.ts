import * as fs from 'node:fs';
import { ConfigError } from '../errors';
import type { ShareSettings } from '../pool/tenant-share';
import { AppLimits, BUILTIN_DEFAULTS, BUILTIN_LIMITS, LodgedConfig, configSchema, parseBytes, tenantShareSettings } from './schema';

export interface Settings extends Omit<LodgedConfig, 'defaults' | 'limits'> {
  defaults: AppLimits;
  limits: AppLimits;
  /** Each tenant's share (the `tenant*` keys of `limits`). */
  share: ShareSettings;
}

/** Reads and checks lodged's JSON file; no file means every default. */
export function loadConfig(file?: string): Settings {
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  return checkConfig(raw, file ?? 'the built-in defaults');
}

export function checkConfig(raw: unknown, source: string): Settings {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = i.path.length ? i.path.join('.') : '(top level)';
      const unknown = i.code === 'unrecognized_keys' ? `unknown key ${i.keys.map((k) => `'${k}'`).join(', ')}` : i.message;
      return `  ${key}: ${unknown}`;
    });
    throw new ConfigError(`invalid lodged settings in ${source}:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  const toLimits = (partial: Partial<Record<keyof AppLimits, number | string>>, base: AppLimits): AppLimits => ({
    timeout: (partial.timeout as number) ?? base.timeout,
    processes: (partial.processes as number) ?? base.processes,
    memory: partial.memory !== undefined ? parseBytes(partial.memory) : base.memory,
    cpu: (partial.cpu as number) ?? base.cpu,
    idle: (partial.idle as number) ?? base.idle,
    tasks: (partial.tasks as number) ?? base.tasks,
    concurrency: (partial.concurrency as number) ?? base.concurrency,
  });
  const limits = toLimits(c.limits, BUILTIN_LIMITS);
  const defaults = toLimits(c.defaults, BUILTIN_DEFAULTS);
  for (const key of Object.keys(defaults) as Array<keyof AppLimits>) {
    if (defaults[key] > limits[key]) defaults[key] = limits[key];
  }
  const allowedRoots = c.allowedRoots.map((r) => (r.length > 1 ? r.replace(/\/+$/, '') : r));
  loaded = { ...c, allowedRoots, defaults, limits, share: tenantShareSettings(c.limits) };
  return loaded;
}

let loaded: Settings | undefined;

/**
 * The settings lodged runs with (the last ones checked), for the few places that
 * are handed no Settings; undefined before any were checked.
 */
export function currentSettings(): Settings | undefined {
  return loaded;
}
