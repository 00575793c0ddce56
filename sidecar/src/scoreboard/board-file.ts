import * as fs from 'node:fs';
import { Geometry, encodeHeader, geometry } from './layout';

/** A pool's board as lodged holds it: the descriptor its workers inherit, and its shape. */
export interface BoardFile {
  fd: number;
  path: string;
  geometry: Geometry;
}

export interface BoardOwner {
  uid: number;
  gid: number;
}

/**
 * Makes a pool's board: a new file (never one that was there: O_EXCL, and no symbolic
 * link followed), mode 0600, sized for `slots` workers, the header written and every
 * slot zero ('empty').
 *
 * Ownership: lodged runs as root and leaves the file root's, in a directory only root
 * can enter; a worker gets it as an inherited descriptor (opened read-write by lodged),
 * so it can write the board without being able to open, replace or chmod it by path.
 * `owner` chowns it instead, for a worker that is to open it by path; it can then
 * rename or unlink it, which the inherited descriptor rules out.
 */
export function createBoard(path: string, slots: number, owner?: BoardOwner): BoardFile {
  const g = geometry(slots);
  // Close-on-exec (libuv opens so): a worker gets it only where spawn's stdio places it.
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    // The umask may have taken bits off; a tenant's worker must not find more than 0600.
    fs.fchmodSync(fd, 0o600);
    fs.ftruncateSync(fd, g.size);
    fs.writeSync(fd, encodeHeader(g), 0, undefined, 0);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
    throw err;
  }
  return { fd, path, geometry: g };
}

/** Closes lodged's descriptor and removes the file (workers that still map it keep their pages). */
export function removeBoard(b: BoardFile): void {
  fs.closeSync(b.fd);
  fs.rmSync(b.path, { force: true });
}
