import type { MessagePort } from 'node:worker_threads';

// Module loader hooks (module.register), on the loader's own thread: each module's URL
// goes to the runtime (app-loader.ts), which reports the app's own files to lodged.
// Nothing is changed: each hook hands on to the next.

let port: MessagePort | undefined;

export function initialize(data: { port: MessagePort }): void {
  port = data.port;
}

export async function load(url: string, context: unknown, next: (url: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  port?.postMessage(url);
  return next(url, context);
}
