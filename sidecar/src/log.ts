import * as fs from 'node:fs';

// lodged's own log: one line per event, for the host. Tenants' app output goes to
// their own log, written by their worker, never here.
//
// A tenant controls much of what lodged reports (its folder and file names, a FAIL
// frame's text, the stderr of a worker that could not start), and the host's log is
// read by people and programs that trust one line to be one event. So every line is
// made to be one line here, in write(); text the tenant wrote is clipped with
// tenantText() where it is put into a message; and the lines about one tenant go
// through tenantLog(uid), which rate-limits them.

type Level = 'error' | 'warn' | 'info' | 'debug';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * Bytes of tenant-supplied text kept in one host log line: enough for an exception's
 * one-line account (the runtime's own is at most 300 characters plus the place), the
 * full traceback being in the tenant's own log.
 */
export const TENANT_TEXT_MAX = 500;

/**
 * Lines about one tenant (uid): a burst of this many, then one per REFILL_MS. A crash
 * loop logs a few lines per start attempt, and attempts back off; a tenant with many
 * app folders failing at once must still not be able to fill the host's disk.
 */
const BURST_LINES = 30;
const REFILL_MS = 2000;

let out: (line: string) => void = (line) => process.stderr.write(line);
let threshold = ORDER.info;

export function openLog(file?: string, level: Level = 'info'): void {
  threshold = ORDER[level];
  if (!file) return;
  const fd = fs.openSync(file, 'a', 0o640);
  out = (line) => fs.writeSync(fd, line);
}

// C0 controls, DEL and the C1 controls (which some terminals act on, as on ESC):
// shown escaped, so that no byte of a message can end its line or restyle a terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every control character written as an escape (`\n`, `\x1b`). */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Text that a tenant supplied, made fit for a host log line: at most `max` bytes of
 * it (UTF-8, cut on a character boundary, the cut said), control characters escaped.
 */
export function tenantText(text: string, max = TENANT_TEXT_MAX): string {
  const bytes = Buffer.byteLength(text);
  let kept = text;
  if (bytes > max) {
    // Cut by bytes, then drop a partial character at the end (U+FFFD from the cut).
    kept = Buffer.from(text).subarray(0, max).toString('utf8').replace(/\uFFFD$/, '');
  }
  const shown = escapeControls(kept);
  return bytes > max ? `${shown}... (${bytes - Buffer.byteLength(kept)} more bytes)` : shown;
}

function write(level: Level, msg: string): void {
  if (ORDER[level] > threshold) return;
  out(`${new Date().toISOString()} [${level}] lodged[${process.pid}]: ${escapeControls(msg)}\n`);
}

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

export const log: Logger = {
  error: (msg: string) => write('error', msg),
  warn: (msg: string) => write('warn', msg),
  info: (msg: string) => write('info', msg),
  debug: (msg: string) => write('debug', msg),
};

/**
 * A token bucket of log lines: `take()` says whether a line may be written now, and
 * counts those it refused, which `dropped()` hands over once (to be said in a line).
 */
export class LineBucket {
  private tokens: number;
  private at: number;
  private refused = 0;

  constructor(private readonly burst = BURST_LINES, private readonly refillMs = REFILL_MS, now = Date.now()) {
    this.tokens = burst;
    this.at = now;
  }

  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.refused++;
    return false;
  }

  /** Lines refused since the last call. */
  dropped(): number {
    const n = this.refused;
    this.refused = 0;
    return n;
  }

  /** Milliseconds until a line may be written again. */
  waitMs(now = Date.now()): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.refillMs);
  }

  /** Full, nothing owed: the bucket may be forgotten. */
  full(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.burst && this.refused === 0;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) / this.refillMs);
    this.at = now;
  }
}

const buckets = new Map<number, { bucket: LineBucket; logger: Logger; timer?: NodeJS.Timeout }>();
/** Buckets are looked over this often, and the full ones forgotten. */
const FORGET_MS = 60_000;
let forgetTimer: NodeJS.Timeout | undefined;

/**
 * The host log for lines about one tenant (uid): rate-limited per tenant; when lines
 * were dropped, a line says how many once the tenant may write again.
 */
export function tenantLog(uid: number): Logger {
  const known = buckets.get(uid);
  if (known) return known.logger;
  const entry: { bucket: LineBucket; logger: Logger; timer?: NodeJS.Timeout } = {
    bucket: new LineBucket(),
    logger: undefined as unknown as Logger,
  };
  const say = (level: Level, msg: string) => {
    if (ORDER[level] > threshold) return;
    if (!entry.bucket.take()) return owe(uid, entry);
    sayDropped(uid, entry.bucket);
    write(level, msg);
  };
  entry.logger = {
    error: (m) => say('error', m),
    warn: (m) => say('warn', m),
    info: (m) => say('info', m),
    debug: (m) => say('debug', m),
  };
  buckets.set(uid, entry);
  if (!forgetTimer) {
    forgetTimer = setInterval(() => {
      for (const [u, e] of buckets) if (!e.timer && e.bucket.full()) buckets.delete(u);
    }, FORGET_MS);
    forgetTimer.unref();
  }
  return entry.logger;
}

// Lines were dropped: say how many as soon as the bucket allows one, even when the
// tenant says nothing more.
function owe(uid: number, entry: { bucket: LineBucket; timer?: NodeJS.Timeout }): void {
  if (entry.timer) return;
  entry.timer = setTimeout(() => {
    entry.timer = undefined;
    if (!entry.bucket.take()) return owe(uid, entry);
    sayDropped(uid, entry.bucket);
  }, entry.bucket.waitMs());
  entry.timer.unref();
}

function sayDropped(uid: number, bucket: LineBucket): void {
  const n = bucket.dropped();
  if (n > 0) write('warn', `uid ${uid}: ${n} log line(s) about this tenant were dropped (over ${BURST_LINES} lines, then one per ${REFILL_MS / 1000} s)`);
}
