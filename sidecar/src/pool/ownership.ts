import * as fs from 'node:fs';
import * as path from 'node:path';
import { currentSettings } from '../config/load';
import { RefusedError } from '../errors';
import { log } from '../log';
import { lookupUser } from '../users';
import { appendTenantLog } from '../watchdog/tenant-log';

/** Who a worker of this app runs as. */
export interface Identity {
  uid: number;
  gid: number;
}

/** The host's rules an app directory must meet, from lodged's settings. */
export interface HostRules {
  /** The lowest uid, and gid, an app may run as. */
  minUid: number;
  /** App directories must be inside one of these (no trailing slash, or '/'). */
  allowedRoots: string[];
  /** The tenant's log, relative to the app directory: refusals are told there too. */
  tenantLog: string;
  /** The web server's user: its files are never run as an app. */
  apacheUser?: string;
}

/** The rules of the settings lodged runs with; `minUid` as the caller passes it. */
export function hostRules(minUid: number): HostRules {
  const s = currentSettings();
  return { minUid, allowedRoots: s?.allowedRoots ?? ['/'], tenantLog: s?.tenantLog ?? 'logs/lodge.log', apacheUser: s?.apacheUser };
}

/**
 * The checks suEXEC makes before it runs a user's program, made here by lodged itself
 * whatever mod_lodge claimed: the app directory's owner is who the workers run as.
 * `asRoot` false means lodged runs unprivileged (a developer's sandbox): workers then
 * run as lodged's own user and only the shape checks apply.
 *
 * A refusal is a RefusedError (500 to the client; the caller logs it for the host),
 * and a line in the tenant's own log when the directory has a tenant to tell.
 */
export function checkOwnership(root: string, entry: string, minUid: number, asRoot: boolean, rules: HostRules = hostRules(minUid)): Identity {
  try {
    return check(root, entry, asRoot, rules);
  } catch (err) {
    if (err instanceof RefusedError) tellTenant(root, err, asRoot, rules);
    throw err;
  }
}

function check(root: string, entry: string, asRoot: boolean, rules: HostRules): Identity {
  if (!rules.allowedRoots.some((r) => r === '/' || root === r || root.startsWith(r + '/'))) {
    throw new RefusedError(`app directory ${root} is outside the host's allowed roots (${rules.allowedRoots.join(', ')})`);
  }
  let real: string;
  try {
    real = fs.realpathSync(root);
  } catch (err) {
    throw new RefusedError(`app directory ${root} cannot be resolved: ${(err as Error).message}`);
  }
  if (real !== root) {
    throw new RefusedError(`app directory ${root} goes through a symbolic link (to ${real})`);
  }
  const dir = fs.statSync(root);
  const file = path.join(root, entry);
  let fileReal: string;
  let st: fs.Stats;
  try {
    fileReal = fs.realpathSync(file);
    st = fs.statSync(fileReal);
  } catch (err) {
    throw new RefusedError(`app file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!fileReal.startsWith(root + '/')) {
    throw new RefusedError(`app file ${file} leads outside the app directory (to ${fileReal})`);
  }
  if (!st.isFile()) throw new RefusedError(`app file ${file} is not a regular file`);
  if (!asRoot) return { uid: process.getuid!(), gid: process.getgid!() };
  const minUid = rules.minUid;
  if (dir.uid === 0) throw new RefusedError(`app directory ${root} is owned by root; apps never run as root`);
  if (dir.uid < minUid) throw new RefusedError(`app directory ${root} is owned by uid ${dir.uid}, below the host's minimum ${minUid}`);
  if (dir.gid === 0) throw new RefusedError(`app directory ${root} has group root`);
  if (dir.gid < minUid) throw new RefusedError(`app directory ${root} has group ${dir.gid}, below the host's minimum ${minUid}`);
  const web = rules.apacheUser ? webUid(rules.apacheUser) : undefined;
  if (web !== undefined && dir.uid === web) throw new RefusedError(`app directory ${root} is owned by the web server's user; apps never run as it`);
  if (dir.mode & 0o022) throw new RefusedError(`app directory ${root} is writable by group or others (mode ${(dir.mode & 0o777).toString(8)})`);
  if (st.uid !== dir.uid) throw new RefusedError(`app file ${file} is owned by uid ${st.uid}, not by the directory's owner ${dir.uid}`);
  if (st.mode & 0o022) throw new RefusedError(`app file ${file} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`);
  // Folders between the app directory and its file: whoever may write one may swap the
  // code the tenant's workers run.
  for (let d = path.dirname(fileReal); d !== root; d = path.dirname(d)) {
    const ds = fs.statSync(d);
    if (ds.uid !== dir.uid) throw new RefusedError(`folder ${d} of the app is owned by uid ${ds.uid}, not by the directory's owner ${dir.uid}`);
    if (ds.mode & 0o022) throw new RefusedError(`folder ${d} of the app is writable by group or others (mode ${(ds.mode & 0o777).toString(8)})`);
  }
  return { uid: dir.uid, gid: dir.gid };
}

const webUids = new Map<string, number | undefined>();

function webUid(name: string): number | undefined {
  if (!webUids.has(name)) webUids.set(name, lookupUser(name)?.uid);
  return webUids.get(name);
}

/** A refused app is re-checked on each request: its tenant hears once a minute. */
const TELL_EVERY_MS = 60_000;
const told = new Map<string, number>();

// The line goes in as the directory's owner would write it (appendTenantLog), and only
// when that owner is a tenant: never for root, a system user or the web server's user,
// whose files lodged must not touch on a stranger's behalf.
function tellTenant(root: string, err: RefusedError, asRoot: boolean, rules: HostRules): void {
  if (!asRoot) return;
  const key = `${root}\0${err.message}`;
  const now = Date.now();
  if ((told.get(key) ?? -Infinity) > now - TELL_EVERY_MS) return;
  told.set(key, now);
  if (told.size > 10_000) told.clear();
  let st: fs.Stats;
  try {
    st = fs.lstatSync(root);
  } catch {
    return; // no directory: no tenant to tell
  }
  const web = rules.apacheUser ? webUid(rules.apacheUser) : undefined;
  if (!st.isDirectory() || st.uid < rules.minUid || st.gid === 0 || st.uid === web) {
    log.info(`${root}: refusal not written to a tenant log (the directory is owned by uid ${st.uid}, not by a tenant)`);
    return;
  }
  // Paths are the tenant's own; the host's reasons name only the app directory.
  appendTenantLog(root, rules.tenantLog, st.uid, st.gid, `refused to run this app: ${err.message}`);
}
