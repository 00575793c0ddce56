import * as fs from 'node:fs';
import * as path from 'node:path';
import { tenantLog, tenantText } from '../log';
import { openAppendAs } from '../posix';

/** A line is cut here: a tenant's log is for reading, and a reason is one line. */
const LINE_MAX = 2000;

/**
 * Appends one line to a tenant's log (`rel` inside the app directory `root`) on
 * lodged's behalf: for what happens where no worker can write it (a refusal before
 * any worker, a worker killed by a watchdog). The file is opened with the tenant's
 * own file-system identity and no symbolic link followed, and written only when it is
 * a plain file of the tenant's with one link: lodged, as root, must not become a way
 * to append to somebody else's file. Failures go to the host's log, never further.
 */
export function appendTenantLog(root: string, rel: string, uid: number, gid: number, message: string): boolean {
  let fd: number;
  try {
    fd = process.getuid!() === 0 ? openAppendAs(root, rel, uid, gid) : openOwn(root, rel);
  } catch (err) {
    tenantLog(uid).warn(`${root}: cannot open the tenant log ${rel} as uid ${uid}: ${(err as Error).message}; line not written: ${tenantText(message)}`);
    return false;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== uid || st.nlink !== 1) {
      tenantLog(uid).warn(`${root}: tenant log ${rel} is not a plain file of uid ${uid} (owner ${st.uid}, ${st.nlink} links); line not written`);
      return false;
    }
    fs.writeSync(fd, tenantLine(message));
    return true;
  } catch (err) {
    tenantLog(uid).warn(`${root}: cannot write the tenant log ${rel}: ${(err as Error).message}`);
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

// An unprivileged lodged (a developer's sandbox) runs every worker as itself: the
// log is its own file, and the checks below still apply.
function openOwn(root: string, rel: string): number {
  const c = fs.constants;
  return fs.openSync(path.join(root, rel), c.O_WRONLY | c.O_APPEND | c.O_CREAT | c.O_NOFOLLOW | c.O_NONBLOCK, 0o640);
}

/** Same shape as the worker's own lines, so the tenant reads one log. */
export function tenantLine(message: string): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  const text = message.replace(/[\r\n]+/g, ' ').slice(0, LINE_MAX);
  return `[${stamp}] [lodged] ${text}\n`;
}
