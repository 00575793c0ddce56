import * as fs from 'node:fs';
import * as path from 'node:path';
import { RefusedError } from '../errors';

/** Who a worker of this app runs as. */
export interface Identity {
  uid: number;
  gid: number;
}

/**
 * The checks suEXEC makes before it runs a user's program, made here by lodged itself
 * whatever mod_lodge claimed: the app directory's owner is who the workers run as.
 * `asRoot` false means lodged runs unprivileged (a developer's sandbox): workers then
 * run as lodged's own user and only the shape checks apply.
 */
export function checkOwnership(root: string, entry: string, minUid: number, asRoot: boolean): Identity {
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
  if (dir.uid === 0) throw new RefusedError(`app directory ${root} is owned by root; apps never run as root`);
  if (dir.uid < minUid) throw new RefusedError(`app directory ${root} is owned by uid ${dir.uid}, below the host's minimum ${minUid}`);
  if (dir.gid === 0) throw new RefusedError(`app directory ${root} has group root`);
  if (dir.mode & 0o022) throw new RefusedError(`app directory ${root} is writable by group or others (mode ${(dir.mode & 0o777).toString(8)})`);
  if (st.uid !== dir.uid) throw new RefusedError(`app file ${file} is owned by uid ${st.uid}, not by the directory's owner ${dir.uid}`);
  if (st.mode & 0o022) throw new RefusedError(`app file ${file} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`);
  return { uid: dir.uid, gid: dir.gid };
}
