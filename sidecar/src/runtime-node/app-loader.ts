import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { WATCHED_FILES_MAX } from '../protocol/constants';

/**
 * Loading the tenant's entry file as `node server.js` would: Module.runMain, which takes
 * CommonJS (require.main is the app's module, so `if (require.main === module) listen()`
 * works) and ES modules (`.mjs`, `"type": "module"`, by Node's own rules) alike. Its
 * errors (a throw while loading, a syntax error, a missing module) come as uncaught
 * exceptions, as they do under node itself; main.ts answers them with FAIL.
 */
export function runEntry(root: string, entry: string): void {
  const file = path.join(root, entry);
  process.argv = [process.argv[0], file];
  if (isModuleEntry(file)) watchModules();
  (require('node:module') as { runMain(main?: string): void }).runMain(file);
}

/**
 * Whether node takes the entry as an ES module: `.mjs`, or `.js` under a package.json
 * whose "type" is "module" (the nearest one, as node looks). Only then are the loader
 * hooks registered: their thread costs each worker about 10 MiB (48 against 58 MiB for
 * a hello app), which a CommonJS app, whose modules require.cache lists, need not pay.
 */
function isModuleEntry(file: string): boolean {
  if (file.endsWith('.mjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { type?: unknown }).type === 'module';
      } catch {
        return false; // node itself refuses to load the app then; the error says why
      }
    }
    if (dir === '/') return false;
  }
}

/** ES modules loaded, as the loader hooks (esm-hooks.ts) report them. */
const esmFiles = new Set<string>();
let esmReports: MessagePort | undefined;

// The module loader's hooks run on a thread of their own: they post each file: URL
// before they load it, and the files of the app's tree are among those READY reports.
// A posted message reaches this thread's event loop only some turns later (later still
// on a busy machine), so ownModules() takes what is waiting itself instead of listening.
function watchModules(): void {
  const mod = require('node:module') as { register?: (spec: string, parent: string, opts: object) => void };
  if (typeof mod.register !== 'function') return;
  const { port1, port2 } = new MessageChannel();
  port1.unref();
  esmReports = port1;
  mod.register(require.resolve('./esm-hooks'), `file://${__filename}`, { data: { port: port2 }, transferList: [port2] });
}

function takeEsmReports(): void {
  if (!esmReports) return;
  for (let m = receiveMessageOnPort(esmReports); m !== undefined; m = receiveMessageOnPort(esmReports)) {
    const url: unknown = m.message;
    if (typeof url === 'string' && url.startsWith('file:')) esmFiles.add(fileURLToPath(url));
  }
}

/**
 * The files of the app's own tree that it loaded (CommonJS and ES modules), for lodged to
 * watch for edits: at most WATCHED_FILES_MAX, the entry first.
 */
export function ownModules(root: string): string[] {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const out = new Set<string>();
  takeEsmReports();
  const all = [...Object.keys(require.cache), ...esmFiles];
  for (const f of all) {
    if (out.size >= WATCHED_FILES_MAX) break;
    if (f.startsWith(prefix)) out.add(f);
  }
  return [...out];
}

/**
 * 'server.js line 3: Error: boom': the innermost place in the tenant's own code (paths
 * relative to the app's directory), the error's name and first line.
 */
export function describe(err: unknown, root: string, entry: string): string {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  if (!(err instanceof Error)) return `${entry}: threw ${clip(String(err))}`;
  const stack = err.stack ?? '';
  let where: string | undefined;
  // A syntax error's stack starts with 'file:line', then the source line.
  const first = /^(?:file:\/\/)?(\/[^\n]*):(\d+)\n/.exec(stack);
  if (first && first[1].startsWith(prefix)) where = `${first[1].slice(prefix.length)} line ${first[2]}`;
  if (!where) {
    for (const m of stack.matchAll(/\(?(?:file:\/\/)?(\/[^():\n]+):(\d+):\d+\)?$/gm)) {
      if (m[1].startsWith(prefix)) {
        where = `${m[1].slice(prefix.length)} line ${m[2]}`;
        break;
      }
    }
  }
  const text = err.message.trim().split('\n')[0] ?? '';
  const name = err.name || 'Error';
  const code = (err as NodeJS.ErrnoException).code;
  const what = text ? `${name}: ${clip(text)}` : name;
  return `${where ?? entry}: ${what}${code && !text.includes(code) ? ` (${code})` : ''}`;
}

function clip(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
}
