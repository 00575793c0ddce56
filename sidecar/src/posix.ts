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
  setChildSubreaper(): void;
  reapChild(pid: number): number;
  mallocTrim(): boolean;
  openAppendAs(dir: string, rel: string, uid: number, gid: number): number;
  socketPair(): [number, number];
  sendWithFd(sock: number, data: Buffer, fd: number): number;
  listenUnix(path: string, backlog: number, uid: number, gid: number, mode: number): number;
  pending(fd: number): boolean;
  listenQueue(fd: number): number;
  RLIMIT: { NPROC: number; AS: number; CPU: number; CORE: number; NOFILE: number };
  CLK_TCK: number;
  PAGE_SIZE: number;
}

// dist/sidecar/src/posix.js -> <root>/build/Release
const addon: Addon = require(path.join(__dirname, '..', '..', '..', 'build', 'Release', 'lodge_posix.node'));

export const getPeerCred = addon.getPeerCred;
/** prlimit(2) on another process; -1 means unlimited. */
export const setLimit = addon.setLimit;
export const RLIMIT = addon.RLIMIT;
/** Clock ticks per second, the unit of the CPU times in /proc/<pid>/stat. */
export const CLK_TCK = addon.CLK_TCK;
export const PAGE_SIZE = addon.PAGE_SIZE;
/** prctl(PR_SET_CHILD_SUBREAPER): orphans of lodged's workers become lodged's children. */
export const setChildSubreaper = addon.setChildSubreaper;

/** waitpid(pid, WNOHANG) on a child lodged did not spawn through libuv. */
export function reapChild(pid: number): 'reaped' | 'running' | 'not-child' {
  const r = addon.reapChild(pid);
  return r > 0 ? 'reaped' : r === 0 ? 'running' : 'not-child';
}

/**
 * Opens `rel` below `dir` for appending, created 0640 if missing, with the file-system
 * identity of uid/gid on the calling thread only, following no symbolic link below
 * `dir`. Returns the descriptor; the caller checks with fstat what it opened.
 */
export const openAppendAs = addon.openAppendAs;

/** malloc_trim(3): the malloc heap's free pages back to the kernel; false when none were (or no such call). */
export const mallocTrim = addon.mallocTrim;

/** A connected unix stream pair, both ends close-on-exec. */
export const socketPair = addon.socketPair;

/**
 * Sends data on a socket with a copy of descriptor fd attached (SCM_RIGHTS), without
 * waiting; returns the bytes sent. Only for a socket with nothing else queued on it.
 */
export const sendWithFd = addon.sendWithFd;

/**
 * A listening unix socket at path (close-on-exec, non-blocking), owned uid:gid with
 * mode, put in place by rename so that a peer never finds no socket there.
 */
export const listenUnix = addon.listenUnix;

/** Whether a listening socket has a connection waiting (poll, not waiting). */
export const pending = addon.pending;

/** Connections waiting in a listening unix socket's queue (-1: the kernel does not say). */
export const listenQueue = addon.listenQueue;

/** The descriptor under a net.Socket (unix sockets and pipes). */
export function socketFd(socket: import('node:net').Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no descriptor');
  return fd;
}

/** Signals every process in the group; false when none was left. */
export function killGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  const num = typeof signal === 'number' ? signal : require('node:os').constants.signals[signal];
  return addon.killGroup(pgid, num);
}
