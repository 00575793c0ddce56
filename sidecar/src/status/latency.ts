/**
 * Request durations of one app, kept two ways, each in fixed memory:
 *
 * - the last minute, for the mean and p95 the status shows: SLOTS slots of SLOT_MS,
 *   each a histogram over FINE fixed buckets (upper bounds 0.1 ms × √2ⁱ, so an
 *   estimate within a bucket is off by at most 41 %; linear interpolation inside the
 *   bucket does better on spread-out traffic). A slot is reused once it is more than
 *   a minute old: nothing is allocated per request.
 * - since lodged started, for the Prometheus histogram: cumulative counts over
 *   PROMETHEUS_BUCKETS, which only grow.
 *
 * Memory per app that had a request in the last minute: SLOTS × FINE × 4 bytes of
 * counts (1,008) + SLOTS × 24 of sums, maxima and slot numbers (144), plus two typed-array
 * headers; dropped again once the whole minute is stale, so an idle app holds none
 * of it. The cumulative histogram holds (PROMETHEUS_BUCKETS + 2) × 8 = 120 bytes for
 * every app that ever had a request.
 */

export const SLOTS = 6;
export const SLOT_MS = 10_000;
/** Seconds the mean and p95 cover: the current slot and the SLOTS - 1 before it. */
export const WINDOW_SECONDS = (SLOTS * SLOT_MS) / 1000;

const FINE = 42;
const FINE_BASE = 0.0001;
/** Upper bound of fine bucket i, seconds; the last bucket takes everything above. */
export function fineUpper(i: number): number {
  return i >= FINE - 1 ? Infinity : FINE_BASE * Math.SQRT2 ** i;
}

/** The fine bucket of a request that took `seconds`: the first whose upper bound is >= it. */
export function fineIndex(seconds: number): number {
  if (seconds <= FINE_BASE) return 0;
  const i = Math.ceil(2 * Math.log2(seconds / FINE_BASE) - 1e-9);
  return i >= FINE - 1 ? FINE - 1 : i;
}

/** Bucket bounds of lodge_request_duration_seconds (+Inf is the total count). */
export const PROMETHEUS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface LatencySummary {
  mean: number;
  p95: number;
  window: number;
  /** Requests the mean and p95 are over. */
  count: number;
}

export interface LatencyHistogram {
  /** counts[i]: requests that took at most PROMETHEUS_BUCKETS[i] seconds. */
  counts: number[];
  sum: number;
  count: number;
}

export class Latency {
  /** SLOTS × FINE counts; absent while the last minute had no request. */
  private counts?: Uint32Array;
  /** Per slot: [sum of seconds, slot number (ms / SLOT_MS), longest]. */
  private slots?: Float64Array;
  /** PROMETHEUS_BUCKETS counts (not cumulative until read), then sum, then count. */
  private total?: Float64Array;

  /** One request took `seconds`; `now` in ms. */
  add(seconds: number, now: number): void {
    if (!(seconds >= 0)) seconds = 0;
    const s = this.slotAt(now);
    const slots = this.slots!;
    this.counts![s * FINE + fineIndex(seconds)]++;
    slots[s * 3] += seconds;
    if (seconds > slots[s * 3 + 2]) slots[s * 3 + 2] = seconds;
    const t = (this.total ??= new Float64Array(PROMETHEUS_BUCKETS.length + 2));
    let b = 0;
    while (b < PROMETHEUS_BUCKETS.length && seconds > PROMETHEUS_BUCKETS[b]) b++;
    if (b < PROMETHEUS_BUCKETS.length) t[b]++;
    t[PROMETHEUS_BUCKETS.length] += seconds;
    t[PROMETHEUS_BUCKETS.length + 1]++;
  }

  /**
   * Requests counted elsewhere (a worker's scoreboard slot): `fine` over this file's fine
   * buckets, `prom` over PROMETHEUS_BUCKETS then +Inf, their durations' sum in seconds.
   * The longest is taken as the upper bound of the highest fine bucket used.
   */
  addCounts(fine: number[], prom: number[], sumSeconds: number, now: number): void {
    const n = fine.reduce((a, c) => a + c, 0);
    if (n === 0) return;
    const s = this.slotAt(now);
    let top = 0;
    for (let i = 0; i < FINE; i++) {
      if (!fine[i]) continue;
      this.counts![s * FINE + i] += fine[i];
      top = i;
    }
    const slots = this.slots!;
    slots[s * 3] += sumSeconds;
    const longest = Math.min(fineUpper(top), sumSeconds);
    if (longest > slots[s * 3 + 2]) slots[s * 3 + 2] = longest;
    const t = (this.total ??= new Float64Array(PROMETHEUS_BUCKETS.length + 2));
    for (let b = 0; b < PROMETHEUS_BUCKETS.length; b++) t[b] += prom[b] ?? 0;
    t[PROMETHEUS_BUCKETS.length] += sumSeconds;
    t[PROMETHEUS_BUCKETS.length + 1] += n;
  }

  // The minute's slot for `now`, emptied first when it holds an older one.
  private slotAt(now: number): number {
    const slotNo = Math.floor(now / SLOT_MS);
    const s = slotNo % SLOTS;
    if (!this.counts) {
      this.counts = new Uint32Array(SLOTS * FINE);
      this.slots = new Float64Array(SLOTS * 3).fill(-1);
    }
    const slots = this.slots!;
    if (slots[s * 3 + 1] !== slotNo) {
      this.counts.fill(0, s * FINE, (s + 1) * FINE);
      slots[s * 3] = 0;
      slots[s * 3 + 1] = slotNo;
      slots[s * 3 + 2] = 0;
    }
    return s;
  }

  /** Mean and p95 over the last minute (zeros, count 0, when there was no request). */
  summary(now: number): LatencySummary {
    const out = { mean: 0, p95: 0, window: WINDOW_SECONDS, count: 0 };
    if (!this.counts) return out;
    const current = Math.floor(now / SLOT_MS);
    const merged = new Float64Array(FINE);
    let sum = 0;
    let n = 0;
    let max = 0;
    for (let s = 0; s < SLOTS; s++) {
      const slotNo = this.slots![s * 3 + 1];
      if (slotNo < 0 || current - slotNo >= SLOTS || slotNo > current) continue;
      sum += this.slots![s * 3];
      max = Math.max(max, this.slots![s * 3 + 2]);
      for (let i = 0; i < FINE; i++) {
        const c = this.counts[s * FINE + i];
        merged[i] += c;
        n += c;
      }
    }
    if (n === 0) {
      // The whole minute is stale: the app gives its window's memory back.
      this.counts = undefined;
      this.slots = undefined;
      return out;
    }
    out.count = n;
    out.mean = sum / n;
    // Interpolation may land past the longest request of its bucket: never past it.
    out.p95 = Math.min(quantile(merged, n, 0.95), max);
    return out;
  }

  /** The cumulative histogram since lodged started, or undefined before any request. */
  histogram(): LatencyHistogram | undefined {
    const t = this.total;
    if (!t) return undefined;
    const counts: number[] = [];
    let c = 0;
    for (let b = 0; b < PROMETHEUS_BUCKETS.length; b++) counts.push((c += t[b]));
    return { counts, sum: t[PROMETHEUS_BUCKETS.length], count: t[PROMETHEUS_BUCKETS.length + 1] };
  }
}

// The q-quantile of the fine histogram, interpolated inside its bucket.
function quantile(merged: Float64Array, n: number, q: number): number {
  const rank = Math.ceil(q * n);
  let seen = 0;
  for (let i = 0; i < FINE; i++) {
    const c = merged[i];
    if (seen + c >= rank) {
      const lo = i === 0 ? 0 : fineUpper(i - 1);
      const hi = fineUpper(i);
      if (hi === Infinity) return lo;
      return lo + ((hi - lo) * (rank - seen)) / c;
    }
    seen += c;
  }
  return fineUpper(FINE - 2);
}
