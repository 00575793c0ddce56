import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { log } from './log';
import { mallocTrim } from './posix';

/**
 * A full collection, for lodged to give back the memory a burst of cold starts left
 * it: V8 keeps the old generation it grew to (garbage included) and frees it only when
 * it next collects, which a lodged gone quiet may not do for a long time. Measured
 * (bench/lib/status-cost.js, 1,000 apps asked once then reaped): ~20 MiB of lodged's
 * memory back, for one compacting collection (~20-60 ms here) after a wave of reaping.
 *
 * V8 offers `gc` only to code compiled while --expose-gc is set: it is set, a context
 * made that holds the function, and it is unset again.
 */
let collect: (() => void) | undefined;

export function trimHeap(): void {
  if (!collect) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
    v8.setFlagsFromString('--no-expose-gc');
  }
  const t0 = performance.now();
  // Compacting: a plain full collection frees the objects but keeps the old
  // generation's pages they were scattered over (measured: 17 MiB mapped for 6 MiB
  // live, against 7 MiB mapped compacting, for 65 ms instead of 21 on a 13 MiB heap).
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    collect();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
  // What the collection freed outside V8's own heap (buffers' bytes, handles) stays in
  // the malloc heap until glibc is asked: ~5 MiB with 1,000 idle apps (measured).
  const trimmed = mallocTrim();
  log.debug(`heap trimmed after idle apps were reaped: ${(performance.now() - t0).toFixed(1)} ms${trimmed ? ', malloc heap too' : ''}`);
}
