import * as fs from 'node:fs';

// lodged's own log: one line per event, for the host. Tenants' app output goes to
// their own log, written by their worker, never here.

type Level = 'error' | 'warn' | 'info' | 'debug';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let out: (line: string) => void = (line) => process.stderr.write(line);
let threshold = ORDER.info;

export function openLog(file?: string, level: Level = 'info'): void {
  threshold = ORDER[level];
  if (!file) return;
  const fd = fs.openSync(file, 'a', 0o640);
  out = (line) => fs.writeSync(fd, line);
}

function write(level: Level, msg: string): void {
  if (ORDER[level] > threshold) return;
  out(`${new Date().toISOString()} [${level}] lodged[${process.pid}]: ${msg}\n`);
}

export const log = {
  error: (msg: string) => write('error', msg),
  warn: (msg: string) => write('warn', msg),
  info: (msg: string) => write('info', msg),
  debug: (msg: string) => write('debug', msg),
};
