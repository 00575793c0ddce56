import * as fs from 'node:fs';

/**
 * User names by uid, from /etc/passwd, read again only when it changes. Users known
 * only to another name service have no name here: their tenant shows as its uid.
 */
export class UserNames {
  private names = new Map<number, string>();
  private mtime = -1;
  /** When the file was last looked at: a snapshot of 1,000 apps stats it once, not 1,000 times. */
  private checked = 0;

  constructor(private readonly file = '/etc/passwd') {}

  name(uid: number): string | undefined {
    this.refresh();
    return this.names.get(uid);
  }

  private refresh(): void {
    const now = Date.now();
    if (now - this.checked < 1000) return;
    this.checked = now;
    const st = fs.statSync(this.file, { throwIfNoEntry: false });
    if (!st || st.mtimeMs === this.mtime) return;
    this.mtime = st.mtimeMs;
    const names = new Map<number, string>();
    for (const line of fs.readFileSync(this.file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length < 3 || !/^\d+$/.test(f[2])) continue;
      if (!names.has(Number(f[2]))) names.set(Number(f[2]), f[0]);
    }
    this.names = names;
  }
}
