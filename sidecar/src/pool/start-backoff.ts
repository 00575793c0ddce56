/** How a start failure holds back the next attempt: doubling, up to a minute. */
export const BACKOFF_FIRST_MS = 1000;
export const BACKOFF_MAX_MS = 60_000;

/**
 * When an app that failed to start is tried again. After each failure the next try
 * waits twice as long as the last (BACKOFF_FIRST_MS, up to BACKOFF_MAX_MS), and every
 * request meanwhile is answered with the failure at once.
 *
 * An edit of the entry file (its mtime, `stamp`) brings the next try forward, so a
 * tenant who fixed the app sees the fix at once; but only once per wait: a try that an
 * edit brought forward and that failed again waits out its time whatever is edited.
 * Otherwise a tenant touching its file every second would get a start every second,
 * for ever.
 */
export class StartBackoff {
  private delayMs = 0;
  private failure?: { message: string; until: number; stamp: number; early: boolean };
  /** The try under way was brought forward by an edit. */
  private early = false;

  /** What the last failure said, while tries are held back. */
  get failed(): string | undefined {
    return this.failure?.message;
  }

  /** Whether a start may be tried now; if so, the hold is over. */
  release(now: number, stamp: number): boolean {
    const f = this.failure;
    if (!f) return true;
    const due = now >= f.until;
    if (!due && (f.early || stamp === f.stamp)) return false;
    this.early = !due;
    this.failure = undefined;
    return true;
  }

  /** A start failed; returns the milliseconds until the next try. */
  fail(now: number, stamp: number, message: string): number {
    this.delayMs = Math.min(BACKOFF_MAX_MS, this.delayMs ? this.delayMs * 2 : BACKOFF_FIRST_MS);
    this.failure = { message, until: now + this.delayMs, stamp, early: this.early };
    this.early = false;
    return this.delayMs;
  }

  /** A worker got ready: the next failure starts from BACKOFF_FIRST_MS again. */
  succeeded(): void {
    this.delayMs = 0;
    this.early = false;
  }
}
