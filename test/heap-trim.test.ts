import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { trimHeap } from '../sidecar/src/heap-trim';
import { eventually } from './helpers/site';

/** KiB of the malloc heap (the `[heap]` mapping) resident in this process. */
function mallocHeapKiB(): number {
  const m = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/smaps', 'utf8'));
  return m ? Number(m[1]) : 0;
}

test('trimHeap gives back to the kernel what a burst left free inside the malloc heap', async (t) => {
  // 48 MiB of 64 KiB buffers, as a burst of workers' buffers was: below glibc's mmap
  // threshold, so they come from the malloc heap; one more after them keeps the heap's
  // top in use, so that free() alone cannot give the space back.
  let burst: Buffer[] | undefined = Array.from({ length: 768 }, () => Buffer.alloc(64 * 1024, 1));
  const top = Buffer.alloc(64 * 1024, 1);
  const full = mallocHeapKiB();
  burst = undefined;
  // The collection may free the buffers' bytes on a helper thread after it returns:
  // asked again until the memory is back (the deadline is only a safety net).
  let trimmed = full;
  await eventually(() => {
    trimHeap();
    trimmed = mallocHeapKiB();
    return trimmed < full - 32 * 1024;
  }, 'the malloc heap given back', 10_000);
  t.diagnostic(`malloc heap: ${full} KiB with the burst's buffers, ${trimmed} KiB after trimHeap (top buffer still held: ${top.length} bytes)`);
  assert.equal(burst, undefined);
});
