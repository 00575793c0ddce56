import * as fs from 'node:fs';
import * as path from 'node:path';

/** How often, at most, one app's files are looked at: on request arrival, never idle. */
export const CHECK_INTERVAL_MS = 500;

/**
 * Notices that an app's code changed, cheaply: no tree scan and no inotify watch
 * (a thousand tenants would exhaust both). It stats only the files the app's worker
 * reported it imported from the app's tree, the entry file and `tmp/restart.txt`,
 * at most every CHECK_INTERVAL_MS, and only while requests come in. A file counts as
 * changed when its mtime differs from what it was when the running code was loaded
 * (not "is newer": uploads often keep the uploader's older timestamps).
 */
export class CodeWatch {
  private seen = new Map<string, number>();
  private nextCheck = 0;

  constructor(private readonly root: string, entry: string) {
    for (const f of [entry, 'tmp/restart.txt']) this.seen.set(path.join(root, f), mtime(path.join(root, f)));
  }

  /** A snapshot of the watched files' mtimes, taken when a new generation starts. */
  snapshot(): Map<string, number> {
    const snap = new Map<string, number>();
    for (const f of this.seen.keys()) snap.set(f, mtime(f));
    return snap;
  }

  /** The running code is now the one of this snapshot, plus the files a worker reported. */
  adopt(snap: Map<string, number>, reported: string[]): void {
    this.seen = new Map(snap);
    for (const f of reported) {
      if (!this.seen.has(f) && f.startsWith(this.root + '/')) this.seen.set(f, mtime(f));
    }
  }

  /** The first changed file, or undefined; rate-limited, so usually no system call. */
  changed(now = Date.now()): string | undefined {
    if (now < this.nextCheck) return undefined;
    this.nextCheck = now + CHECK_INTERVAL_MS;
    for (const [f, m] of this.seen) if (mtime(f) !== m) return f;
    return undefined;
  }

  get size(): number {
    return this.seen.size;
  }
}

// Absent is 0: a file that appears later (a first restart.txt) is a change.
function mtime(file: string): number {
  return fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0;
}
