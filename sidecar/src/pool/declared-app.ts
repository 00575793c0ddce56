import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppLimits } from '../config/schema';
import { RefusedError } from '../errors';
import { AppSpec, envNameAllowed } from './app-spec';

/**
 * What an app's own configuration file says about it: lodged reads it itself, so an
 * APP frame only points at an app directory and never chooses what runs there.
 * Anything that speaks to lodged's socket as the web server's user (mod_php, a CGI
 * without suEXEC) can send APP frames; with this, all it can start is an app that
 * its tenant declared, as declared, which it could start over HTTP anyway.
 */
export interface DeclaredApp {
  kind: string;
  entry: string;
  callable: string;
  env: Record<string, string>;
  /** Limits the file asks for, in lodged's units (seconds, bytes, counts). */
  limits: Partial<Record<'timeout' | 'cpu' | 'idle' | 'processes' | 'memory', number>>;
  /** LodgeDashboard's path, when the file opens the tenant's dashboard. */
  dashboard?: string;
}

/** A tenant's .htaccess above this is refused (a large WordPress one is a few KiB). */
export const DECLARATION_MAX_BYTES = 256 * 1024;

// Lodge directives count at the top level and inside these sections only: the same
// places mod_lodge accepts them (it refuses LodgeApp inside <Files>, <Location>, <If>).
const TRANSPARENT = new Set(['ifmodule', 'ifdefine', 'ifversion', 'ifdirective', 'ifsection', 'directory']);

const SECONDS: Record<string, 'timeout' | 'cpu' | 'idle' | 'processes'> = {
  lodgetimeout: 'timeout',
  lodgecpu: 'cpu',
  lodgeidle: 'idle',
  lodgeprocesses: 'processes',
};

/** Apache's argument splitting: words, "quoted" or 'quoted' with backslash escapes. */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i])) i++;
    if (i >= line.length) break;
    const q = line[i];
    let word = '';
    if (q === '"' || q === "'") {
      i++;
      while (i < line.length && line[i] !== q) {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        word += line[i++];
      }
      i++;
    } else {
      while (i < line.length && !/\s/.test(line[i])) word += line[i++];
    }
    out.push(word);
  }
  return out;
}

function size(v: string): number | undefined {
  const m = /^(\d+)([KMG]?)B?$/i.exec(v);
  if (!m) return undefined;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}

/**
 * The Lodge lines of a configuration file. `directory`: read only what is inside
 * `<Directory directory>` (a host's server config); without it, the whole file (an
 * .htaccess). Later lines win, as in Apache. Undefined when no LodgeApp is there.
 */
export function parseDeclaration(text: string, directory?: string): DeclaredApp | undefined {
  const app: DeclaredApp = { kind: '', entry: '', callable: '', env: {}, limits: {} };
  // Each open section: whether Lodge lines inside it count.
  const stack: boolean[] = [];
  const counts = () => (directory === undefined ? stack.every(Boolean) : stack.length > 0 && stack.every(Boolean) && inDir > 0);
  let inDir = 0;
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const close = /^<\/\s*([A-Za-z]+)\s*>/.exec(line);
    if (close) {
      if (close[1].toLowerCase() === 'directory' && inDir > 0 && stack[stack.length - 1] === true) inDir--;
      stack.pop();
      continue;
    }
    const open = /^<\s*([A-Za-z]+)(\s+[^>]*)?>/.exec(line);
    if (open) {
      const name = open[1].toLowerCase();
      if (name === 'directory') {
        const arg = splitArgs((open[2] ?? '').trim())[0] ?? '';
        const match = directory !== undefined && arg.replace(/\/+$/, '') === directory;
        if (match) inDir++;
        stack.push(match);
      } else {
        stack.push(TRANSPARENT.has(name));
      }
      continue;
    }
    if (!counts()) continue;
    const [name, ...args] = splitArgs(line);
    const d = name.toLowerCase();
    if (d === 'lodgeapp' && args.length === 2) {
      const colon = args[1].lastIndexOf(':');
      app.kind = args[0];
      app.entry = colon >= 0 ? args[1].slice(0, colon) : args[1];
      app.callable = colon >= 0 ? args[1].slice(colon + 1) : '';
    } else if (d === 'lodgeenv' && args.length === 2) {
      app.env[args[0]] = args[1];
    } else if (d in SECONDS && args.length === 1 && /^\d+$/.test(args[0])) {
      app.limits[SECONDS[d]] = Number(args[0]);
    } else if (d === 'lodgedashboard' && args.length === 1 && args[0].startsWith('/')) {
      app.dashboard = args[0];
    } else if (d === 'lodgememory' && args.length === 1) {
      const n = size(args[0]);
      if (n !== undefined) app.limits.memory = n;
    }
  }
  return app.kind ? app : undefined;
}

/**
 * Reads the configuration file an APP frame names for `root` and returns what it
 * declares. A tenant's file (`root`/.htaccess or the server's AccessFileName there)
 * must belong to the app's owner or root and be writable by nobody else; a file
 * outside `root` is a host's server config: root's, writable by root alone, and only
 * its `<Directory root>` section counts. Refuses (RefusedError) an app the file does
 * not declare.
 */
export function readDeclaration(root: string, config: string, ownerUid: number): DeclaredApp {
  const inRoot = path.dirname(config) === root && !path.basename(config).startsWith('..');
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO in its place must not hang lodged's loop.
    fd = fs.openSync(config, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new RefusedError(`${config} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new RefusedError(`${config} is not a regular file`);
    if (st.size > DECLARATION_MAX_BYTES) throw new RefusedError(`${config} is over ${DECLARATION_MAX_BYTES} bytes`);
    if (inRoot) {
      if (st.uid !== ownerUid && st.uid !== 0) throw new RefusedError(`${config} is owned by uid ${st.uid}, not by the app's owner ${ownerUid}`);
    } else if (st.uid !== 0) {
      throw new RefusedError(`${config} names the app but is neither in the app directory nor root's`);
    }
    if (st.mode & 0o022) throw new RefusedError(`${config} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    const declared = parseDeclaration(buf.toString('utf8', 0, got), inRoot ? undefined : root);
    if (!declared) throw new RefusedError(`${config} declares no LodgeApp for ${root}`);
    return declared;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The spec lodged runs: the app the file declares, its LodgeEnv and limits, clamped by
 * the host's caps. The frame's own kind, entry, env and limits are set aside; they
 * differ from the file's only for a forged frame, a sub-folder's own Lodge lines
 * (which lodged does not apply: one app, one set of settings, one pool), or an edit
 * that Apache and lodged read a moment apart. `differs` says which, for the log.
 */
export function declaredSpec(spec: AppSpec, declared: DeclaredApp, defaults: AppLimits): { spec: AppSpec; differs: string[] } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(declared.env)) if (envNameAllowed(k)) env[k] = v;
  const limits = { ...spec.limits };
  for (const key of ['timeout', 'cpu', 'idle', 'processes', 'memory'] as const) {
    const asked = declared.limits[key];
    const base = asked ?? defaults[key];
    limits[key] = Math.min(base, spec.caps[key]);
  }
  const out: AppSpec = { ...spec, kind: declared.kind as AppSpec['kind'], entry: declared.entry, callable: declared.callable, env, limits };
  const differs: string[] = [];
  if (out.kind !== spec.kind || out.entry !== spec.entry || out.callable !== spec.callable) differs.push('app');
  if (JSON.stringify(Object.entries(out.env).sort()) !== JSON.stringify(Object.entries(spec.env).sort())) differs.push('LodgeEnv');
  if (JSON.stringify(out.limits) !== JSON.stringify(spec.limits)) differs.push('limits');
  return { spec: out, differs };
}

/** Pools are per app as declared: two frames for one declaration share one pool. */
export function declarationKey(spec: AppSpec): string {
  return JSON.stringify([spec.root, spec.kind, spec.entry, spec.callable, Object.entries(spec.env).sort(), spec.limits]);
}
