import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The worker process's own output: the tenant's log (opened as the tenant, relative to
 * the app's directory, never through a symbolic link), which the app's console and
 * process.stdout/stderr write to from then on. fd 1 is /dev/null and fd 2 lodged's pipe
 * (read only until the worker is ready): nothing of the app's goes to either.
 */
let logFd = -1;

export function openLog(rel: string): void {
  const parent = path.dirname(rel);
  if (parent !== '.' && !fs.existsSync(parent) && fs.existsSync(path.dirname(parent))) {
    try {
      fs.mkdirSync(parent, { mode: 0o750 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const c = fs.constants;
  logFd = fs.openSync(rel, c.O_WRONLY | c.O_APPEND | c.O_CREAT | c.O_NOFOLLOW, 0o640);
  for (const stream of [process.stdout, process.stderr]) redirect(stream);
}

type WriteCb = (err?: Error | null) => void;

// Synchronous appends, as a line-buffered file: what the app printed is in the log when
// a watchdog kills the worker.
function redirect(stream: NodeJS.WriteStream): void {
  stream.write = ((chunk: string | Uint8Array, enc?: BufferEncoding | WriteCb, cb?: WriteCb): boolean => {
    if (typeof enc === 'function') [cb, enc] = [enc, undefined];
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, enc ?? 'utf8') : chunk;
    try {
      fs.writeSync(logFd, bytes);
    } catch (err) {
      // The log's disk is full, or the file was replaced by a FIFO nobody reads: the
      // app's output is lost, the app goes on.
      cb?.(err as Error);
      return true;
    }
    cb?.();
    return true;
  }) as typeof stream.write;
}

function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** One line for the tenant's log (stderr until the log is open). */
export function log(msg: string): void {
  const line = `[${stamp()}] [lodge node ${process.pid}] ${msg}\n`;
  try {
    fs.writeSync(logFd >= 0 ? logFd : 2, line);
  } catch {
    /* no log and no stderr left: nowhere to say it */
  }
}

/**
 * Ends the worker now. process.reallyExit, not process.exit: a tenant's 'exit' or
 * 'beforeExit' handler must not keep alive (or delay) a worker lodged considers gone.
 */
export function exitNow(code: number): never {
  (process as unknown as { reallyExit(code: number): void }).reallyExit(code);
  throw new Error('unreachable: reallyExit returned');
}
