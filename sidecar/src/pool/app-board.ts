import * as fs from 'node:fs';
import * as path from 'node:path';
import { BoardFile, createBoard, removeBoard } from '../scoreboard/board-file';
import { MAX_SLOTS, SLOT, SLOT_SIZE } from '../scoreboard/layout';
import { BoardReader, SlotView } from '../scoreboard/reader';
import { BoardTally, SlotDelta } from '../scoreboard/tally';

/** What one read of the board says of one worker lodged started (by its slot). */
export interface SlotSeen {
  slot: number;
  pid: number;
  busy: boolean;
  /** Counts up with each request the worker began. */
  requestId: number;
  /** Seconds the request in hand has run, while busy. */
  busyFor: number;
  /** The ticket of the REQ in hand (0: none). */
  ticket: number;
  /** The request's method and path, as the worker wrote them (escaped by the reader). */
  method: string;
  path: string;
}

/**
 * The scoreboard of an app reached on its own socket (scoreboard/LAYOUT.md): a block of
 * slots per worker, one per lane (a WSGI worker's one, LodgeConcurrency for a Node
 * worker), where the worker counts the requests it takes straight from Apache, so
 * that lodged learns of them without a message per request. lodged makes the file
 * (root's, 0600, in a folder only root enters) and each worker gets it as an inherited
 * descriptor with its slot number; lodged reads it on the pool's clock.
 *
 * Every byte of it is the tenant's to write: a slot counts only while it names the pid
 * lodged started there (the tally's rule), and what it says only moves that app's own
 * numbers and its own workers' watchdogs.
 */
export class AppBoard {
  private readonly file: BoardFile;
  private readonly reader: BoardReader;
  private readonly tally = new BoardTally();
  private readonly pids: Array<number | undefined>;

  /** `lanes`: the slots of one worker; a worker's block starts at a multiple of it. */
  constructor(dir: string, name: string, workers: number, private readonly lanes = 1) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${name}.board`);
    // One left by a lodged before this one (killed, or the app's pool made anew).
    fs.rmSync(file, { force: true });
    // Room for a reload's new workers beside the old ones leaving.
    const slots = Math.floor(Math.min(MAX_SLOTS, (workers * 2 + 2) * lanes) / lanes) * lanes;
    this.file = createBoard(file, slots);
    this.reader = new BoardReader(this.file.fd, this.file.geometry);
    this.pids = new Array<number | undefined>(slots).fill(undefined);
  }

  get fd(): number {
    return this.file.fd;
  }

  /** The first slot of a free block for a worker about to start, or undefined when all are taken. */
  freeSlot(): number | undefined {
    for (let i = 0; i < this.pids.length; i += this.lanes) if (this.pids[i] === undefined) return i;
    return undefined;
  }

  /** The worker started in the block at `slot` has this pid. */
  taken(slot: number, pid: number): void {
    for (let i = slot; i < slot + this.lanes; i++) {
      this.pids[i] = pid;
      this.writeLeave(i, 0);
    }
  }

  /**
   * Asks the worker of `slot` to take no more connections: it reads the word before
   * each accept, so none slips in between its last request and lodged's hang-up.
   */
  tellLeave(slot: number): void {
    this.writeLeave(slot, 1);
  }

  private writeLeave(slot: number, value: number): void {
    const word = Buffer.alloc(4);
    word.writeUInt32LE(value);
    fs.writeSync(this.file.fd, word, 0, 4, this.file.geometry.slotsOffset + slot * SLOT_SIZE + SLOT.leave);
  }

  /**
   * The worker of the block at `slot` is gone: what it counted last is read first, and
   * the tickets of the requests it held when it went (`held`, with its pid).
   */
  freed(slot: number): { deltas: SlotDelta[]; held: Array<{ ticket: number; pid: number }> } {
    const { deltas, seen } = this.read();
    const held = seen.filter((s) => s.slot >= slot && s.slot < slot + this.lanes && s.busy && s.ticket !== 0).map((s) => ({ ticket: s.ticket, pid: s.pid }));
    for (let i = slot; i < slot + this.lanes; i++) this.pids[i] = undefined;
    return { deltas, held };
  }

  /**
   * The pid lodged started in the slot whose worker holds the request with this REQ
   * ticket: a VERDICT for a request that failed before its worker's ACCEPTED names it
   * so. The tenant can write any ticket on its board; it can only point lodged at
   * another of its own workers.
   */
  pidByTicket(ticket: number): number | undefined {
    if (ticket === 0) return undefined;
    // The snapshot alone: the counts in it are the pool's clock's to take (read()).
    for (const s of this.reader.read().slots) if (this.isWorkers(s) && s.state === 'busy' && s.ticket === ticket) return this.pids[s.index];
    return undefined;
  }

  /** What the workers counted since the last read, and what each is doing now. */
  read(): { deltas: SlotDelta[]; seen: SlotSeen[] } {
    const snap = this.reader.read();
    const deltas = this.tally.step(snap, (i) => this.pids[i]);
    const seen: SlotSeen[] = [];
    for (const s of snap.slots) {
      if (!this.isWorkers(s)) continue;
      const busy = s.state === 'busy';
      seen.push({ slot: s.index, pid: s.pid, busy, requestId: s.requestId, busyFor: busy ? (snap.nowNs - s.sinceNs) / 1e9 : 0, ticket: s.ticket, method: s.method, path: s.path });
    }
    return { deltas, seen };
  }

  close(): void {
    removeBoard(this.file);
  }

  private isWorkers(s: SlotView): boolean {
    const pid = this.pids[s.index];
    return pid !== undefined && s.pid === pid && s.consistent && s.valid;
  }
}
