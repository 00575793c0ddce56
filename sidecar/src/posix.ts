import * as path from 'node:path';

// Typed face of native/addon/lodge_posix.cc. Each function is one system call;
// errors carry Node-style `code`, `errno` and `syscall`.

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

interface Addon {
  getPeerCred(fd: number): PeerCred;
  killGroup(pgid: number, signal: number): boolean;
  setLimit(pid: number, resource: number, soft: number, hard: number): void;
  RLIMIT: { NPROC: number; AS: number; CPU: number; CORE: number; NOFILE: number };
}

// dist/sidecar/src/posix.js -> <root>/build/Release
const addon: Addon = require(path.join(__dirname, '..', '..', '..', 'build', 'Release', 'lodge_posix.node'));

export const getPeerCred = addon.getPeerCred;
export const setLimit = addon.setLimit;
export const RLIMIT = addon.RLIMIT;

/** Signals every process in the group; false when none was left. */
export function killGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  const num = typeof signal === 'number' ? signal : require('node:os').constants.signals[signal];
  return addon.killGroup(pgid, num);
}
