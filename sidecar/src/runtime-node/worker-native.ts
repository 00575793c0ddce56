import * as path from 'node:path';

// Typed face of native/addon/lodge_worker.cc: what the Node worker needs of the kernel to
// take requests on the app's own socket. Loaded only by a worker that has one.

/** What an FdWatch waits for (libuv's UV_READABLE and UV_WRITABLE). */
export const READABLE = 1;
export const WRITABLE = 2;

export interface FdWatch {
  /** Calls back when the descriptor is ready for `events` (READABLE, WRITABLE or both); 0 stops. */
  start(events: number): void;
  stop(): void;
  /** The watch's end; the descriptor stays open. */
  close(): void;
  /** ref(false): the watch alone does not keep the worker's loop alive. */
  ref(on: boolean): void;
}

export interface WorkerAddon {
  mapShared(fd: number, length: number): ArrayBuffer;
  accept(fd: number): number;
  closeOnExec(fd: number): void;
  /** Bytes read into the buffer's start (`peek`: left in the socket too), 0 at end of file, or -errno (-EAGAIN: none yet). */
  recv(fd: number, into: Buffer, peek?: boolean): number;
  /** Bytes written of the buffers in order (maybe fewer), or -errno; never raises SIGPIPE. */
  send(fd: number, buffers: Buffer[]): number;
  close(fd: number): void;
  FdWatch: new (fd: number, onReady: (status: number, events: number) => void) => FdWatch;
}

// dist/sidecar/src/runtime-node/worker-native.js -> <root>/build/Release
export function workerNative(): WorkerAddon {
  return require(path.join(__dirname, '..', '..', '..', '..', 'build', 'Release', 'lodge_worker.node')) as WorkerAddon;
}
