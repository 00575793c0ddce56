import * as v8 from 'node:v8';

/**
 * lodged's V8 settings, set before anything else is loaded (main.ts imports this
 * first), so that they hold however lodged is started (Apache's default command,
 * LodgeDaemonCommand, a service manager).
 *
 * The young generation stays at its first size (1 MiB a semi-space) instead of
 * growing to 8 MiB a semi-space in a burst of cold starts and keeping that: lodged's
 * objects are few and long-lived (pools, records), what it allocates per request is
 * small, so a small young generation costs it little collecting. Collected often, the
 * garbage of a burst (buffers and handles of workers come and gone) is freed before
 * the malloc heap grows for it. Measured (bench/lib/status-cost.js): 5.6 MiB less
 * anonymous memory at start, 22 MiB less with 1,000 idle apps (malloc heap 9.9 MiB
 * instead of 28).
 */
v8.setFlagsFromString('--semi-space-growth-factor=1');
