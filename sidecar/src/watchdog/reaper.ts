import * as fs from 'node:fs';
import { log } from '../log';
import { reapChild, setChildSubreaper } from '../posix';
import { readStat } from './sampler';

/** SIGCHLDs come in bursts (a killed tree): one pass over /proc after the burst. */
const PASS_DELAY_MS = 100;

/**
 * lodged as its workers' subreaper: a process whose parent died (a tenant's
 * double-forked or setsid() child, or one whose worker was killed) becomes lodged's
 * child rather than init's, and lodged reaps it when it exits. Not every init reaps
 * strangers' orphans (a container's often does not), and a zombie of a tenant's
 * would count against its task limit and keep its user "in use" forever.
 *
 * Workers themselves are libuv's to reap, and are skipped.
 */
export class Reaper {
  private timer?: NodeJS.Timeout;

  constructor(private readonly isWorker: (pid: number) => boolean) {}

  start(): string {
    try {
      setChildSubreaper();
    } catch (err) {
      return `orphans go to init (prctl: ${(err as Error).message})`;
    }
    process.on('SIGCHLD', () => this.soon());
    return 'orphans reaped by lodged (subreaper)';
  }

  /** Schedules a pass; also called after lodged kills a tree. */
  soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pass();
    }, PASS_DELAY_MS);
    this.timer.unref();
  }

  private pass(): void {
    let names: string[];
    try {
      names = fs.readdirSync('/proc');
    } catch (err) {
      log.error(`cannot list /proc to reap orphans: ${(err as Error).message}`);
      return;
    }
    const me = process.pid;
    for (const name of names) {
      const pid = Number(name);
      if (!(pid > 1) || this.isWorker(pid)) continue;
      const st = readStat(pid);
      if (!st || st.ppid !== me || st.state !== 'Z') continue;
      try {
        reapChild(pid);
      } catch (err) {
        log.error(`waitpid ${pid}: ${(err as Error).message}`);
      }
    }
  }
}
