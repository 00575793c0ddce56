import { PROMETHEUS_BUCKETS } from '../status/latency';

/**
 * The scoreboard's binary layout (LAYOUT.md draws it). Little-endian, every field at
 * an offset that is a multiple of its size. sidecar/runtimes/_lodge_runtime/scoreboard.py
 * holds the writer's copy of these numbers; test/scoreboard.test.ts checks they agree.
 */

export const MAGIC = Buffer.from('LODGEBRD', 'latin1');
export const VERSION = 1;

export const HEADER_SIZE = 64;
export const HEADER = {
  magic: 0, // 8 bytes
  version: 8, // u32
  headerSize: 12, // u32
  slotCount: 16, // u32
  slotSize: 20, // u32
  seqOffset: 24, // u32: where the sequence table starts
  slotsOffset: 28, // u32: where slot 0 starts
  pathMax: 32, // u32
  promBuckets: 36, // u32
  fineBuckets: 40, // u32
} as const;

/** One u64 sequence number per slot, in a table of their own (see LAYOUT.md: why apart). */
export const SEQ_SIZE = 8;

export const SLOT_SIZE = 512;
export const METHOD_MAX = 8;
export const PATH_MAX = 120;
/** Requests by status class: 1xx, 2xx, 3xx, 4xx, 5xx, and anything else (0: no status sent). */
export const STATUS_CLASSES = 6;
/** Non-cumulative counts over latency.ts's PROMETHEUS_BUCKETS, then one for +Inf. */
export const PROM_BUCKETS = PROMETHEUS_BUCKETS.length + 1;
/** Counts over latency.ts's fine buckets: upper bounds 0.1 ms × √2ⁱ, the last unbounded. */
export const FINE_BUCKETS = 42;
export const FINE_BASE = 0.0001;

export const SLOT = {
  pid: 0, // u32
  generation: 4, // u32
  state: 8, // u8 \
  methodLen: 9, // u8  | one u64 ("meta"), stored at once
  pathLen: 10, // u16 |
  flags: 12, // u32  / bit 0: the path was cut at PATH_MAX
  requestId: 16, // u64: begin() counts it up; the request in hand when busy
  sinceNs: 24, // u64: CLOCK_MONOTONIC ns: busy, when the request began; else when the state began
  latencySumNs: 32, // u64: time of all requests ended
  statusClass: 40, // STATUS_CLASSES × u64: requests ended, by class (their sum: requests ended)
  method: 88, // METHOD_MAX bytes, zero-padded: the request in hand, or the last one
  path: 96, // PATH_MAX bytes, pathLen of them meant
  prom: 216, // PROM_BUCKETS × u32
  fine: 272, // FINE_BUCKETS × u32
  end: 440, // the end of the worker's fields (claim() zeroes up to here)
  leave: 440, // u32, lodged's to write: non-zero, take no more connections (after the request in hand, leave)
  ticket: 444, // u32: the ticket of the REQ in hand (0: none), by which a VERDICT without a pid names the worker
} as const;

export const FLAG_PATH_CUT = 1;

/** Slot states; 0 is a slot no worker has claimed (the file as lodged made it). */
export const STATES = ['empty', 'starting', 'idle', 'busy', 'leaving'] as const;
export type SlotState = (typeof STATES)[number];

/** The most slots a board holds: more workers than any pool's LodgeProcesses cap. */
export const MAX_SLOTS = 1024;

export interface Geometry {
  slots: number;
  seqOffset: number;
  slotsOffset: number;
  size: number;
}

/** Where everything lies in a board of `slots` slots. */
export function geometry(slots: number): Geometry {
  if (!Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
    throw new RangeError(`a scoreboard holds 1 to ${MAX_SLOTS} slots. Got ${slots}`);
  }
  const seqOffset = HEADER_SIZE;
  // Slots start on a 64-byte line of their own, so a slot's writes never share a
  // cache line with the sequence table.
  const slotsOffset = seqOffset + Math.ceil((slots * SEQ_SIZE) / 64) * 64;
  return { slots, seqOffset, slotsOffset, size: slotsOffset + slots * SLOT_SIZE };
}

/** The header lodged writes when it makes a board. */
export function encodeHeader(g: Geometry): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, HEADER.magic);
  h.writeUInt32LE(VERSION, HEADER.version);
  h.writeUInt32LE(HEADER_SIZE, HEADER.headerSize);
  h.writeUInt32LE(g.slots, HEADER.slotCount);
  h.writeUInt32LE(SLOT_SIZE, HEADER.slotSize);
  h.writeUInt32LE(g.seqOffset, HEADER.seqOffset);
  h.writeUInt32LE(g.slotsOffset, HEADER.slotsOffset);
  h.writeUInt32LE(PATH_MAX, HEADER.pathMax);
  h.writeUInt32LE(PROM_BUCKETS, HEADER.promBuckets);
  h.writeUInt32LE(FINE_BUCKETS, HEADER.fineBuckets);
  return h;
}

/** Whether `h` is the header lodged wrote for `g` (the tenant can write it too). */
export function headerMatches(h: Buffer, g: Geometry): boolean {
  return h.length >= HEADER_SIZE && encodeHeader(g).equals(h.subarray(0, HEADER_SIZE));
}
