import * as path from 'node:path';

// Typed face of native/addon/lodge_worker.cc: what the Node worker needs of the kernel to
// take requests on the app's own socket. Loaded only by a worker that has one.

export interface ReadWatch {
  start(): void;
  stop(): void;
  close(): void;
}

interface WorkerAddon {
  mapShared(fd: number, length: number): ArrayBuffer;
  accept(fd: number): number;
  closeOnExec(fd: number): void;
  ReadWatch: new (fd: number, onReadable: (status: number) => void) => ReadWatch;
}

// dist/sidecar/src/runtime-node/worker-native.js -> <root>/build/Release
export function workerNative(): WorkerAddon {
  return require(path.join(__dirname, '..', '..', '..', '..', 'build', 'Release', 'lodge_worker.node')) as WorkerAddon;
}
