'use strict';
// Loaded into the lodged that status-cost.js measures (NODE_OPTIONS --require): on
// SIGWINCH it writes what lodged's own counters say of its memory into the
// diagnostic folder as probe-PID-N.json, so that the step can split lodged's PSS
// into the JS heap (by space), ArrayBuffers, the malloc heap and the rest. No
// collection is forced: the numbers are lodged's as it runs. SIGWINCH, because
// lodged ignores it and a terminal's resize never reaches a daemon.

const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');

const dir = (/--diagnostic-dir=(\S+)/.exec(process.env.NODE_OPTIONS ?? '') ?? [])[1];
if (dir) {
  let n = 0;
  process.on('SIGWINCH', () => {
    const h = v8.getHeapStatistics();
    const out = {
      memoryUsage: process.memoryUsage(),
      heap: { totalPhysical: h.total_physical_size, used: h.used_heap_size, malloced: h.malloced_memory, external: h.external_memory },
      spaces: Object.fromEntries(v8.getHeapSpaceStatistics().filter((s) => s.space_size > 0)
        .map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }])),
      modules: Object.keys(require.cache).length,
      resources: process.getActiveResourcesInfo().reduce((m, k) => ((m[k] = (m[k] ?? 0) + 1), m), {}),
    };
    const file = path.join(dir, `probe-${process.pid}-${n++}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(out));
    fs.renameSync(`${file}.tmp`, file);
  });
}
