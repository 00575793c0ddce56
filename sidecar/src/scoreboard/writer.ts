import { fineIndex, PROMETHEUS_BUCKETS } from '../status/latency';
import {
  FINE_BUCKETS, FLAG_PATH_CUT, HEADER, HEADER_SIZE, MAGIC, METHOD_MAX, PATH_MAX, PROM_BUCKETS, SEQ_SIZE, SLOT, SLOT_SIZE,
  STATUS_CLASSES, VERSION,
} from './layout';

/** Slot states as the board stores them (layout.ts STATES). */
export const STATE = { starting: 1, idle: 2, busy: 3, leaving: 4 } as const;

export class BoardWriteError extends Error {}

/**
 * The Node worker's side of the scoreboard (LAYOUT.md), as scoreboard.py is the Python
 * worker's: a block of consecutive slots, one per lane, written through a shared map of
 * the board (`map`: the ArrayBuffer lodge_worker.node's mapShared made of BOARD_FD), so a
 * request's begin and end are stores, not system calls. Each change is bracketed by the
 * slot's sequence number (odd while it is written).
 *
 * The counters are kept here and only stored into the map: whatever else writes the
 * file (a process the app forked keeps the map) cannot make the worker throw.
 */
export class BoardWriter {
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly u64: BigUint64Array;
  private readonly slotsAt: number;
  private readonly seqAt: number;

  constructor(map: ArrayBuffer, readonly first: number, readonly count: number) {
    if (map.byteLength < HEADER_SIZE) throw new BoardWriteError(`the board is ${map.byteLength} bytes, shorter than its header`);
    this.u8 = new Uint8Array(map);
    this.u32 = new Uint32Array(map, 0, Math.floor(map.byteLength / 4));
    this.u64 = new BigUint64Array(map, 0, Math.floor(map.byteLength / 8));
    const h = Buffer.from(map, 0, HEADER_SIZE);
    if (!h.subarray(0, 8).equals(MAGIC) || h.readUInt32LE(HEADER.version) !== VERSION) throw new BoardWriteError(`not a version ${VERSION} Lodge scoreboard`);
    const word = (at: number) => h.readUInt32LE(at);
    if (word(HEADER.slotSize) !== SLOT_SIZE || word(HEADER.pathMax) !== PATH_MAX || word(HEADER.promBuckets) !== PROM_BUCKETS || word(HEADER.fineBuckets) !== FINE_BUCKETS) {
      throw new BoardWriteError("the board's layout is not this runtime's");
    }
    const slots = word(HEADER.slotCount);
    this.seqAt = word(HEADER.seqOffset);
    this.slotsAt = word(HEADER.slotsOffset);
    const fits = this.seqAt % 8 === 0 && this.slotsAt % 64 === 0 && this.seqAt + slots * SEQ_SIZE <= this.slotsAt && this.slotsAt + slots * SLOT_SIZE <= map.byteLength;
    if (!Number.isInteger(first) || !Number.isInteger(count) || count < 1 || first < 0 || first + count > slots || !fits) {
      throw new BoardWriteError(`slots ${first}..${first + count - 1} are not on a board of ${slots} slots`);
    }
  }

  /** Lane `i`'s slot (0 <= i < count). */
  slot(i: number): SlotWriter {
    return new SlotWriter(this.u8, this.u32, this.u64, this.slotsAt + (this.first + i) * SLOT_SIZE, this.seqAt + (this.first + i) * SEQ_SIZE);
  }

  /** lodged wrote the first slot's leave word: take no more connections. */
  toldToLeave(): boolean {
    return this.u32[(this.slotsAt + this.first * SLOT_SIZE + SLOT.leave) / 4] !== 0;
  }
}

const PROM_NS = PROMETHEUS_BUCKETS.map((b) => b * 1e9);

function promIndex(ns: number): number {
  for (let i = 0; i < PROM_NS.length; i++) if (ns <= PROM_NS[i]) return i;
  return PROM_BUCKETS - 1;
}

/** One lane's slot: claim() once, then begin() and end() for each request it takes. */
export class SlotWriter {
  private seq: bigint;
  private rid = 0n;
  private sinceNs = 0n;
  private totalNs = 0n;
  private state: number = 0;
  private readonly byClass = new Array<bigint>(STATUS_CLASSES).fill(0n);
  private readonly prom = new Array<number>(PROM_BUCKETS).fill(0);
  private readonly fine = new Array<number>(FINE_BUCKETS).fill(0);

  constructor(
    private readonly u8: Uint8Array,
    private readonly u32: Uint32Array,
    private readonly u64: BigUint64Array,
    private readonly at: number,
    private readonly seqAt: number,
  ) {
    // A worker before this one may have died mid-write: go on from an even number.
    this.seq = (u64[seqAt / 8] + 1n) & ~1n;
    u64[seqAt / 8] = this.seq;
  }

  /** A new worker takes the slot: all zero but its pid and generation, state 'starting'. */
  claim(pid: number, generation: number): void {
    this.open();
    this.u8.fill(0, this.at, this.at + SLOT.end);
    this.u32[(this.at + SLOT.pid) / 4] = pid >>> 0;
    this.u32[(this.at + SLOT.generation) / 4] = generation >>> 0;
    this.setMeta(STATE.starting, 0, 0, 0);
    this.u64[(this.at + SLOT.sinceNs) / 8] = process.hrtime.bigint();
    this.close();
  }

  /** STATE.idle or STATE.leaving (begin() and end() set busy and idle themselves). */
  setState(state: number): void {
    this.open();
    this.u8[this.at + SLOT.state] = state;
    this.state = state;
    this.u64[(this.at + SLOT.sinceNs) / 8] = process.hrtime.bigint();
    this.close();
  }

  /** A request starts: its method and path as the client sent them (latin-1). */
  begin(method: string, path: string): void {
    const m = method.length > METHOD_MAX ? method.slice(0, METHOD_MAX) : method;
    const cut = path.length > PATH_MAX;
    const p = cut ? path.slice(0, PATH_MAX) : path;
    this.sinceNs = process.hrtime.bigint();
    this.rid++;
    this.open();
    this.setMeta(STATE.busy, m.length, p.length, cut ? FLAG_PATH_CUT : 0);
    this.u64[(this.at + SLOT.requestId) / 8] = this.rid;
    this.u64[(this.at + SLOT.sinceNs) / 8] = this.sinceNs;
    const methodAt = this.at + SLOT.method;
    this.u8.fill(0, methodAt, methodAt + METHOD_MAX);
    for (let i = 0; i < m.length; i++) this.u8[methodAt + i] = m.charCodeAt(i);
    const pathAt = this.at + SLOT.path;
    for (let i = 0; i < p.length; i++) this.u8[pathAt + i] = p.charCodeAt(i);
    this.close();
  }

  /** The request ended with `status` (0 when none was sent). */
  end(status: number): void {
    const now = process.hrtime.bigint();
    let fine = 0;
    let prom = 0;
    if (this.state === STATE.busy) {
      const took = now - this.sinceNs;
      this.totalNs += took;
      const ns = Number(took);
      fine = fineIndex(ns / 1e9);
      prom = promIndex(ns);
    }
    const c = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 5;
    this.open();
    this.u8[this.at + SLOT.state] = STATE.idle; // the last request's method and path stay shown
    this.state = STATE.idle;
    this.u64[(this.at + SLOT.sinceNs) / 8] = now;
    this.u64[(this.at + SLOT.latencySumNs) / 8] = this.totalNs;
    this.u64[(this.at + SLOT.statusClass) / 8 + c] = ++this.byClass[c];
    this.u32[(this.at + SLOT.prom) / 4 + prom] = this.prom[prom] = (this.prom[prom] + 1) >>> 0;
    this.u32[(this.at + SLOT.fine) / 4 + fine] = this.fine[fine] = (this.fine[fine] + 1) >>> 0;
    this.close();
  }

  // state, the method's and the path's lengths, flags: the u64 at SLOT.state.
  private setMeta(state: number, methodLen: number, pathLen: number, flags: number): void {
    this.state = state;
    this.u8[this.at + SLOT.state] = state;
    this.u8[this.at + SLOT.methodLen] = methodLen;
    this.u8[this.at + SLOT.pathLen] = pathLen & 0xff;
    this.u8[this.at + SLOT.pathLen + 1] = pathLen >> 8;
    this.u32[(this.at + SLOT.flags) / 4] = flags;
  }

  private open(): void {
    this.u64[this.seqAt / 8] = ++this.seq;
  }

  private close(): void {
    this.u64[this.seqAt / 8] = ++this.seq;
  }
}
