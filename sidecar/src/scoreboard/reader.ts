import * as fs from 'node:fs';
import { escapeControls } from '../log';
import {
  FINE_BUCKETS,
  FLAG_PATH_CUT,
  Geometry,
  METHOD_MAX,
  PATH_MAX,
  PROM_BUCKETS,
  SEQ_SIZE,
  SLOT,
  SLOT_SIZE,
  STATES,
  STATUS_CLASSES,
  SlotState,
  headerMatches,
} from './layout';

/** Times a slot found mid-write is read again before it is given up as torn for this round. */
const RETRIES = 3;
/** Linux's PID_MAX_LIMIT: no pid is larger. */
const PID_MAX = 4_194_304;
const TWO32 = 2 ** 32;

/**
 * One worker's slot, decoded. Every field is bounded whatever the file held (a tenant
 * controls every byte of its pool's board): counts are integers in 0..2⁵³-1, the state
 * is one of STATES or 'invalid', method and path are at most METHOD_MAX and PATH_MAX
 * bytes with control characters escaped. `pid` is the worker's word only: before
 * signalling it, check it against the pid lodged started in this slot.
 */
export interface SlotView {
  index: number;
  /** Read whole: its sequence number even and the same before and after. */
  consistent: boolean;
  /** Every field passed its check (a known state, lengths and pid in range). */
  valid: boolean;
  pid: number;
  generation: number;
  state: SlotState | 'invalid';
  requestId: number;
  /** The ticket of the REQ in hand or last taken (0: none): a VERDICT without a pid names its worker so. */
  ticket: number;
  /** CLOCK_MONOTONIC ns: busy, when the request in hand began; else when the state began. Never later than the read. */
  sinceNs: number;
  method: string;
  path: string;
  pathCut: boolean;
  /** Requests ended: the sum of statusClass. */
  requests: number;
  /** Requests ended by status class: [1xx, 2xx, 3xx, 4xx, 5xx, other]. */
  statusClass: number[];
  latencySumNs: number;
  /** Non-cumulative counts over PROMETHEUS_BUCKETS, then +Inf. */
  prom: number[];
  /** Counts over latency.ts's fine buckets. */
  fine: number[];
}

export interface BoardSnapshot {
  /** The header is the one lodged wrote; the slots are decoded by lodged's geometry either way. */
  headerOk: boolean;
  /** CLOCK_MONOTONIC ns when the read began (process.hrtime, the clock the writer uses). */
  nowNs: number;
  /** Slots found mid-write and read again by themselves (a slot kept odd for ever is its writer's doing). */
  retried: number;
  slots: SlotView[];
}

/**
 * Reads a pool's board through lodged's descriptor. A whole board is three reads:
 * header and sequence table, the slots, the sequence table again; a slot whose number
 * was odd (mid-write) or changed in between is read again by itself, up to RETRIES
 * times. The geometry is lodged's own, never the header's.
 */
export class BoardReader {
  private readonly head: Buffer;
  private readonly seqAfter: Buffer;
  private readonly body: Buffer;
  private readonly one = Buffer.alloc(SLOT_SIZE);
  private readonly seqOne = Buffer.alloc(SEQ_SIZE * 2);
  // The same bytes as u32s (Buffer.alloc gives each its own aligned ArrayBuffer).
  private readonly headW: Uint32Array;
  private readonly seqAfterW: Uint32Array;
  private readonly bodyW: Uint32Array;
  private readonly oneW = u32View(this.one);
  private readonly seqOneW = u32View(this.seqOne);

  constructor(
    private readonly fd: number,
    private readonly g: Geometry,
  ) {
    this.head = Buffer.alloc(g.slotsOffset);
    this.seqAfter = Buffer.alloc(g.slots * SEQ_SIZE);
    this.body = Buffer.alloc(g.slots * SLOT_SIZE);
    this.headW = u32View(this.head);
    this.seqAfterW = u32View(this.seqAfter);
    this.bodyW = u32View(this.body);
  }

  read(): BoardSnapshot {
    const nowNs = Number(process.hrtime.bigint());
    const { g, head, body, seqAfter } = this;
    this.fill(head, 0);
    this.fill(body, g.slotsOffset);
    this.fill(seqAfter, g.seqOffset);
    const slots: SlotView[] = [];
    let retried = 0;
    for (let i = 0; i < g.slots; i++) {
      if (sameEven(this.headW, (g.seqOffset + i * SEQ_SIZE) / 4, this.seqAfterW, (i * SEQ_SIZE) / 4)) {
        slots.push(decode(body, this.bodyW, i * SLOT_SIZE, i, true, nowNs));
      } else {
        retried++;
        slots.push(this.retry(i, nowNs));
      }
    }
    return { headerOk: headerMatches(head, g), nowNs, retried, slots };
  }

  private retry(i: number, nowNs: number): SlotView {
    const seqAt = this.g.seqOffset + i * SEQ_SIZE;
    const { one, seqOne } = this;
    for (let n = 0; n < RETRIES; n++) {
      this.fillPart(seqOne, 0, SEQ_SIZE, seqAt);
      this.fill(one, this.g.slotsOffset + i * SLOT_SIZE);
      this.fillPart(seqOne, SEQ_SIZE, SEQ_SIZE, seqAt);
      if (sameEven(this.seqOneW, 0, this.seqOneW, SEQ_SIZE / 4)) return decode(one, this.oneW, 0, i, true, nowNs);
    }
    return decode(one, this.oneW, 0, i, false, nowNs);
  }

  // A board the tenant truncated reads short: what is missing reads as zero.
  private fill(buf: Buffer, position: number): void {
    this.fillPart(buf, 0, buf.length, position);
  }

  private fillPart(buf: Buffer, at: number, length: number, position: number): void {
    const n = fs.readSync(this.fd, buf, at, length, position);
    if (n < length) buf.fill(0, at + n, at + length);
  }
}

function sameEven(a: Uint32Array, at: number, b: Uint32Array, bt: number): boolean {
  const lo = a[at];
  return (lo & 1) === 0 && lo === b[bt] && a[at + 1] === b[bt + 1];
}

/** The u64 at u32 index `k` as a Number, no larger than 2⁵³-1. */
function u64(w: Uint32Array, k: number): number {
  const hi = w[k + 1];
  return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * TWO32 + w[k];
}

// Byte offsets of the slot's fields as u32 indexes (every field is 4-aligned).
const W = {
  pid: SLOT.pid / 4,
  generation: SLOT.generation / 4,
  pathLen: SLOT.pathLen,
  flags: SLOT.flags / 4,
  requestId: SLOT.requestId / 4,
  sinceNs: SLOT.sinceNs / 4,
  latencySumNs: SLOT.latencySumNs / 4,
  statusClass: SLOT.statusClass / 4,
  prom: SLOT.prom / 4,
  fine: SLOT.fine / 4,
  ticket: SLOT.ticket / 4,
};
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/** Slot `index`, whose first byte is `o` in `b` (`w`: the same bytes as u32s, o a multiple of 4). */
function decode(b: Buffer, w: Uint32Array, o: number, index: number, consistent: boolean, nowNs: number): SlotView {
  const k = o / 4;
  let valid = true;
  let pid = w[k + W.pid];
  if (pid > PID_MAX) {
    pid = 0;
    valid = false;
  }
  const stateByte = b[o + SLOT.state];
  const state = stateByte < STATES.length ? STATES[stateByte] : 'invalid';
  if (state === 'invalid') valid = false;
  let methodLen = b[o + SLOT.methodLen];
  if (methodLen > METHOD_MAX) {
    methodLen = METHOD_MAX;
    valid = false;
  }
  let pathLen = b[o + SLOT.pathLen] | (b[o + SLOT.pathLen + 1] << 8);
  if (pathLen > PATH_MAX) {
    pathLen = PATH_MAX;
    valid = false;
  }
  const statusClass = new Array<number>(STATUS_CLASSES);
  let requests = 0;
  for (let c = 0; c < STATUS_CLASSES; c++) requests += statusClass[c] = u64(w, k + W.statusClass + 2 * c);
  let path = pathLen === 0 ? '' : b.toString('latin1', o + SLOT.path, o + SLOT.path + pathLen);
  if (CONTROL.test(path)) path = escapeControls(path);
  return {
    index,
    consistent,
    valid,
    pid,
    generation: w[k + W.generation],
    state,
    requestId: u64(w, k + W.requestId),
    ticket: w[k + W.ticket],
    sinceNs: Math.min(u64(w, k + W.sinceNs), nowNs),
    method: token(b, o + SLOT.method, methodLen),
    path,
    pathCut: (w[k + W.flags] & FLAG_PATH_CUT) !== 0,
    requests: Math.min(requests, Number.MAX_SAFE_INTEGER),
    statusClass,
    latencySumNs: u64(w, k + W.latencySumNs),
    prom: counts(w, k + W.prom, PROM_BUCKETS),
    fine: counts(w, k + W.fine, FINE_BUCKETS),
  };
}

// Plain arrays: a typed-array copy per slot costs V8 more than the whole rest of a read.
function counts(w: Uint32Array, k: number, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = w[k + i];
  return out;
}

// An HTTP method is a token: anything else in those bytes shows as '?'.
function token(b: Buffer, at: number, n: number): string {
  let s = '';
  for (let k = 0; k < n; k++) {
    const c = b[at + k];
    s += (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f ? String.fromCharCode(c) : '?';
  }
  return s;
}

function u32View(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
}
