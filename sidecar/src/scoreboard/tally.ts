import { FINE_BUCKETS, PROM_BUCKETS, STATUS_CLASSES } from './layout';
import type { BoardSnapshot, SlotView } from './reader';

/** What one worker's slot did between two reads: counts for the pool's status model to add. */
export interface SlotDelta {
  index: number;
  pid: number;
  /** Requests ended: the sum of statusClass. */
  ended: number;
  statusClass: number[];
  latencySumNs: number;
  prom: number[];
  fine: number[];
}

interface Seen {
  pid: number;
  statusClass: number[];
  latencySumNs: number;
  prom: number[];
  fine: number[];
}

/**
 * Turns successive reads of one board into what each worker did in between. A slot
 * counts only while it names the pid lodged started in it (`pidOf`, lodged's own
 * record, never the board's); a new pid there starts from zero. Counts that went
 * backwards were reset or forged: what the slot holds now is taken as the delta, so
 * a tenant can skew its own numbers but never make them negative.
 */
export class BoardTally {
  private readonly seen: Array<Seen | undefined> = [];

  step(snap: BoardSnapshot, pidOf: (index: number) => number | undefined): SlotDelta[] {
    const out: SlotDelta[] = [];
    for (const s of snap.slots) {
      const pid = pidOf(s.index);
      if (pid === undefined || s.pid !== pid) {
        // Not a worker of lodged's (yet, or any more): nothing of it is counted or kept.
        if (pid === undefined) this.seen[s.index] = undefined;
        continue;
      }
      // A torn or broken read says nothing this round; the next whole one carries it.
      if (!s.consistent || !s.valid) continue;
      const last = this.seen[s.index]?.pid === pid ? this.seen[s.index] : undefined;
      const d = delta(s, last);
      this.seen[s.index] = { pid, statusClass: s.statusClass, latencySumNs: s.latencySumNs, prom: s.prom, fine: s.fine };
      if (d.ended > 0 || d.latencySumNs > 0) out.push(d);
    }
    return out;
  }
}

function delta(s: SlotView, last: Seen | undefined): SlotDelta {
  const back =
    last !== undefined &&
    (s.latencySumNs < last.latencySumNs ||
      behind(s.statusClass, last.statusClass) ||
      behind(s.prom, last.prom) ||
      behind(s.fine, last.fine));
  const from = last && !back ? last : undefined;
  const statusClass = minus(s.statusClass, from?.statusClass, STATUS_CLASSES);
  return {
    index: s.index,
    pid: s.pid,
    ended: statusClass.reduce((a, c) => a + c, 0),
    statusClass,
    latencySumNs: s.latencySumNs - (from?.latencySumNs ?? 0),
    prom: minus(s.prom, from?.prom, PROM_BUCKETS),
    fine: minus(s.fine, from?.fine, FINE_BUCKETS),
  };
}

function behind(now: number[], before: number[]): boolean {
  for (let i = 0; i < now.length; i++) if (now[i] < before[i]) return true;
  return false;
}

function minus(now: number[], before: number[] | undefined, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = now[i] - (before?.[i] ?? 0);
  return out;
}
