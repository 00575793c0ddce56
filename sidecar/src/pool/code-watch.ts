import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';
import { WATCHED_FILES_MAX } from '../protocol/constants';

/** How often, at most, one app's files are looked at: on request arrival, never idle. */
export const CHECK_INTERVAL_MS = 500;

/*
 * Files of one app watched at most: WATCHED_FILES_MAX (protocol.json). The runtime
 * reports only the modules the app imported from its own tree, and stops there itself:
 * a Django project's own modules are a few hundred. A worker is the tenant's, so lodged
 * caps the list again: each file is two system calls (in the thread pool) every
 * CHECK_INTERVAL_MS while requests come in, and 400,000 of them kept lodged busy 1.7 s
 * a pass.
 */

/** Files looked at at once in a pass: the thread pool is shared with every other app. */
const BATCH = 32;

/** The mtime of a file that is absent, or that is not the app's (it left the root). */
const ABSENT = 0;
/** A file not looked at yet. */
const UNSEEN = -1;
/**
 * A reported file whose first look found it written after its worker began to load:
 * which version the worker read is unknown, so it counts as changed (one reload).
 */
const LOADED_UNKNOWN = -2;
/**
 * How far before the worker's start a write still counts as possibly after it: the
 * kernel stamps files from a coarse clock that may lag Date.now() by a tick.
 */
const CLOCK_SLACK_MS = 20;

/**
 * Notices that an app's code changed, cheaply: no tree scan and no inotify watch
 * (a thousand tenants would exhaust both). It stats only the files the app's worker
 * reported it imported from the app's tree, the entry file and `tmp/restart.txt`,
 * at most every CHECK_INTERVAL_MS, and only while requests come in. A file counts as
 * changed when its mtime differs from what it was when the running code was loaded
 * (not "is newer": uploads often keep the uploader's older timestamps).
 *
 * The list comes from the tenant's worker, and lodged runs as root: a file is watched
 * only while it resolves (symbolic links followed) to a file under the app's root,
 * checked again at every look, so the tenant never learns when a file of somebody
 * else changes. Looks are asynchronous (fs.promises, in batches), one pass at a time:
 * a pass never holds the event loop that serves every other tenant.
 *
 * changed() answers from the last finished pass and starts the next one, so an edit
 * is noticed on the first request after the pass that saw it.
 */
export class CodeWatch {
  /** The mtimes of the running code (UNSEEN: its first look sets it). */
  private seen = new Map<string, number>();
  /** What the last looks saw. */
  private latest = new Map<string, number>();
  /** A changed file the last pass found, until changed() tells it or new code is adopted. */
  private found?: string;
  private nextCheck = 0;
  private passing = false;
  private again = false;
  /** When the worker whose reported files are UNSEEN began to load (adopt's loadedSince). */
  private loadedSince?: number;
  /** The last change told came from LOADED_UNKNOWN: the code it started is not suspected again. */
  private toldUnknown = false;
  private readonly root: string;
  /** The entry file and restart.txt: watched even while absent (a first restart.txt is a change). */
  private readonly fixed: Set<string>;

  constructor(root: string, entry: string) {
    this.root = path.resolve(root);
    this.fixed = new Set([entry, 'tmp/restart.txt'].map((f) => path.join(this.root, f)));
    for (const f of this.fixed) this.seen.set(f, UNSEEN);
    this.pass();
  }

  /** A snapshot of the watched files' mtimes (as last seen), taken when a new generation starts. */
  snapshot(): Map<string, number> {
    const snap = new Map<string, number>();
    for (const [f, m] of this.seen) snap.set(f, this.latest.get(f) ?? m);
    return snap;
  }

  /**
   * The running code is now the one of this snapshot, plus the files a worker
   * reported (confined and cut to WATCHED_FILES_MAX by confineReported): they are
   * looked at at once, and their first look is what they were when loaded, unless it
   * finds one written after `loadedSince` (when that worker started): an edit that
   * raced the load (a tenant's upload of several files, a test's) then counts as a
   * change, so it goes live rather than becoming the baseline unseen. Not for the code
   * such a change started: an app that writes a module of its own at every start
   * reloads once, not for ever.
   */
  adopt(snap: Map<string, number>, reported: string[], loadedSince?: number): void {
    this.seen = new Map(snap);
    this.found = undefined;
    this.loadedSince = this.toldUnknown ? undefined : loadedSince;
    this.toldUnknown = false;
    for (const f of reported) {
      if (this.seen.size >= WATCHED_FILES_MAX + this.fixed.size) break;
      if (!this.seen.has(f) && under(this.root, f)) this.seen.set(f, UNSEEN);
    }
    if ([...this.seen.values()].includes(UNSEEN)) this.pass();
  }

  /**
   * The first changed file a pass found since the last call, or undefined. Starts a
   * pass at most every CHECK_INTERVAL_MS; never a system call here. Each find is told
   * once, so an edit known not to load costs the pool one look per pass, not one per
   * request.
   */
  changed(now = Date.now()): string | undefined {
    if (now >= this.nextCheck) {
      this.nextCheck = now + CHECK_INTERVAL_MS;
      this.pass();
    }
    const found = this.found;
    this.found = undefined;
    if (found !== undefined) this.toldUnknown = this.seen.get(found) === LOADED_UNKNOWN;
    return found;
  }

  get size(): number {
    return this.seen.size;
  }

  /** Resolves once no pass is running or asked for (for tests). */
  async settled(): Promise<void> {
    while (this.passing) await new Promise((r) => setTimeout(r, 5));
  }

  // One pass at a time: a request during a pass asks for one more after it.
  private pass(): void {
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = true;
    this.look().then(
      () => this.passed(),
      (err: Error) => {
        log.error(`${this.root}: looking at the app's files failed: ${err.message}`);
        this.passed();
      },
    );
  }

  private passed(): void {
    this.passing = false;
    if (this.again) {
      this.again = false;
      this.pass();
    }
  }

  private async look(): Promise<void> {
    const seen = this.seen;
    const files = [...seen.keys()];
    for (let i = 0; i < files.length; i += BATCH) {
      const batch = files.slice(i, i + BATCH);
      const mtimes = await Promise.all(batch.map((f) => confinedMtime(this.root, f)));
      batch.forEach((f, j) => this.saw(seen, f, mtimes[j]));
    }
    if (this.seen !== seen) return; // new code was adopted meanwhile: its own pass follows
    for (const f of this.latest.keys()) if (!seen.has(f)) this.latest.delete(f);
    for (const [f, m] of seen) {
      if (m !== UNSEEN && this.latest.get(f) !== m) {
        this.found = f;
        return;
      }
    }
  }

  private saw(seen: Map<string, number>, f: string, m: number): void {
    this.latest.set(f, m);
    if (this.seen !== seen || seen.get(f) !== UNSEEN) return;
    // A reported module that is not there, or not the app's: not watched at all.
    if (m === ABSENT && !this.fixed.has(f)) seen.delete(f);
    else if (this.loadedSince !== undefined && !this.fixed.has(f) && m >= this.loadedSince - CLOCK_SLACK_MS) seen.set(f, LOADED_UNKNOWN);
    else seen.set(f, m);
  }
}

/** Whether `file` (absolute, normalised) lies under `root`. */
function under(root: string, file: string): boolean {
  return file.startsWith(root === '/' ? '/' : root + '/');
}

/**
 * The mtime of `file` if it is, after every symbolic link is followed, a file under
 * `root`; ABSENT otherwise. lstat of the resolved path: its last part cannot be a
 * link to elsewhere (it was resolved an instant before).
 */
export async function confinedMtime(root: string, file: string): Promise<number> {
  try {
    const real = await fs.promises.realpath(file);
    if (!under(root, real)) return ABSENT;
    const st = await fs.promises.lstat(real);
    return st.isFile() ? st.mtimeMs : ABSENT;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EACCES') return ABSENT;
    throw err;
  }
}

/** The outcome of confining a worker's list of files. */
export interface ConfinedFiles {
  files: string[];
  /** Paths that resolve outside the root (`..`, or absolute elsewhere): dropped. */
  outside: number;
  /** Files past WATCHED_FILES_MAX: dropped. */
  over: number;
}

/**
 * A worker's reported files, resolved against the app root (`..` taken out) and kept
 * only when inside it, at most WATCHED_FILES_MAX of them, duplicates once. Pure: the
 * symbolic links are followed at each look (confinedMtime).
 */
export function confineReported(root: string, reported: string[]): ConfinedFiles {
  const base = path.resolve(root);
  const kept = new Set<string>();
  let outside = 0;
  let over = 0;
  for (const f of reported) {
    const abs = path.resolve(base, f);
    if (!under(base, abs)) outside++;
    else if (kept.has(abs)) continue;
    else if (kept.size >= WATCHED_FILES_MAX) over++;
    else kept.add(abs);
  }
  return { files: [...kept], outside, over };
}
