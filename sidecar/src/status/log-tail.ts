import * as fs from 'node:fs';
import * as path from 'node:path';

/** The dashboard shows this much of the end of the tenant's log. */
export const LOG_TAIL_BYTES = 64 * 1024;

export type LogTail = { ok: true; text: string; size: number } | { ok: false; why: string };

/**
 * The last LOG_TAIL_BYTES of an app's log (`logFile`, relative to its directory), for
 * the tenant's own dashboard. lodged reads it as root, so the file must be what the
 * tenant owns: no symbolic link on the way (O_NOFOLLOW for the file, its folders
 * resolved to themselves), a regular file, owned by `uid`. Otherwise a tenant could
 * point its log at another's file, or at the host's, and read it on its dashboard.
 * The tail starts after the first line break, so no line shows cut.
 */
export function readLogTail(root: string, logFile: string, uid: number, max = LOG_TAIL_BYTES): LogTail {
  const file = path.join(root, logFile);
  const dir = path.dirname(file);
  let fd: number;
  try {
    if (fs.realpathSync(dir) !== dir) return { ok: false, why: `${path.dirname(logFile)} goes through a symbolic link` };
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, why: code === 'ENOENT' ? `no ${logFile} yet` : `${logFile} cannot be read (${code ?? (err as Error).message})` };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { ok: false, why: `${logFile} is not a regular file` };
    if (st.uid !== uid) return { ok: false, why: `${logFile} is not owned by the app's owner` };
    const start = Math.max(0, st.size - max);
    const buf = Buffer.alloc(Math.min(max, st.size));
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, start + got);
      if (n === 0) break;
      got += n;
    }
    let text = buf.toString('utf8', 0, got);
    if (start > 0) {
      const nl = text.indexOf('\n');
      text = nl >= 0 ? text.slice(nl + 1) : text;
    }
    return { ok: true, text, size: st.size };
  } finally {
    fs.closeSync(fd);
  }
}
