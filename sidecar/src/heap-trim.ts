import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { log } from './log';

/**
 * A full collection, for lodged to give back the memory a burst of cold starts left
 * it: V8 keeps the old generation it grew to (garbage included) and frees it only when
 * it next collects, which a lodged gone quiet may not do for a long time. Measured
 * (bench/lib/status-cost.js, 1,000 apps asked once then reaped): ~20 MiB of lodged's
 * memory back, for ~10-20 ms of one collection.
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
  collect();
  log.debug(`heap trimmed after idle apps were reaped: ${(performance.now() - t0).toFixed(1)} ms`);
}
