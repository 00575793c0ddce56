import { z } from 'zod';

// The status model's shape: what `?json` serves, what the host page and `lodge status`
// read, and what the Prometheus text is made from. Versioned: a change that removes or
// renames a field raises STATUS_VERSION; adding an optional field does not.

export const STATUS_VERSION = 1;

const count = z.number().int().min(0);
const seconds = z.number().min(0);
const bytes = z.number().int().min(0);

/**
 * Why lodged stopped a worker (the watchdog that acted), as counted and shown. Added
 * since version 1 (values only, nothing renamed): 'abandoned', a lent worker whose
 * Apache connection closed mid-request; 'admin', stopped from the status page or CLI.
 */
export const killReason = z.enum(['timeout', 'cpu', 'memory', 'tasks', 'crash', 'protocol', 'stuck', 'start', 'abandoned', 'admin']);
export type KillReason = z.infer<typeof killReason>;

export const workerStatus = z.object({
  pid: z.number().int().positive(),
  state: z.enum(['starting', 'idle', 'busy', 'lent', 'stopping']),
  generation: count,
  startedAt: z.number().describe('ms since the epoch'),
  requests: count,
  /** The request in progress (the oldest, when it holds several), when busy. */
  current: z.object({ method: z.string(), path: z.string(), elapsed: seconds }).optional(),
  /** Requests lodged handed it that are not over yet, when more than one (a Node or ASGI worker's lanes). */
  inFlight: count.optional(),
  rss: bytes.optional(),
  pss: bytes.optional(),
  cpu: seconds.optional().describe('CPU seconds of the worker so far'),
});

export const appStatus = z.object({
  /** The app directory; the tenant's own path, never shown to another tenant. */
  root: z.string(),
  entry: z.string(),
  kind: z.string(),
  state: z.enum(['starting', 'running', 'idle-stopped', 'crashed', 'reloading', 'refused']),
  /** Why: the refusal, or the start failure's file and line, when there is one. */
  reason: z.string().optional(),
  generation: count,
  lastReload: z.object({ at: z.number(), ok: z.boolean(), error: z.string().optional() }).optional(),
  limits: z.object({ timeout: seconds, cpu: seconds, memory: bytes, processes: count, idle: seconds }),
  workers: z.array(workerStatus),
  queue: z.object({ now: count, peak: count }),
  capReached: count.describe('times a request found every worker busy at the cap'),
  requests: z.object({
    total: count,
    '2xx': count,
    '3xx': count,
    '4xx': count,
    '5xx': count,
    /** Ended with a status lodged did not see (mod_lodge carried a lent worker's response itself). */
    unseen: count.optional(),
  }),
  /** Requests lodged answered without a worker (queue full, refused, failing to start). */
  turnedAway: count.optional(),
  latency: z.object({ mean: seconds, p95: seconds, window: seconds, count: count.optional() }).describe('over the last minute'),
  /** Request durations since lodged started: counts[i] took at most the snapshot's buckets[i] seconds; count is all (+Inf). */
  histogram: z.object({ counts: z.array(count), sum: seconds, count }).optional(),
  lastRequest: z.number().optional().describe('ms since the epoch'),
  kills: z.record(killReason, count),
  restarts: count,
  unstableRestarts: count,
  memory: bytes.describe('RSS of all workers'),
});

export const tenantStatus = z.object({
  uid: z.number().int().min(0),
  name: z.string().optional(),
  apps: z.array(appStatus),
});

export const statusEvent = z.object({
  at: z.number(),
  uid: z.number().int().min(0).optional(),
  app: z.string().optional(),
  kind: z.enum(['reload', 'kill', 'crash', 'refusal', 'clamp', 'start-failed', 'share']),
  message: z.string(),
});

export const statusSnapshot = z.object({
  version: z.literal(STATUS_VERSION),
  lodged: z.object({
    pid: z.number().int().positive(),
    version: z.string(),
    uptime: seconds,
    enforcement: z.string(),
    /** lodged's own resident memory, bytes. */
    rss: bytes.optional(),
    /** Apps remembered (running or idle-stopped), and the most it keeps. */
    apps: z.object({ known: count, max: count }).optional(),
  }),
  at: z.number(),
  /** Upper bounds, seconds, of every app's histogram buckets (+Inf implied). */
  buckets: z.array(seconds).optional(),
  tenants: z.array(tenantStatus),
  events: z.array(statusEvent),
});

export type WorkerStatus = z.infer<typeof workerStatus>;
export type AppStatus = z.infer<typeof appStatus>;
export type TenantStatus = z.infer<typeof tenantStatus>;
export type StatusEvent = z.infer<typeof statusEvent>;
export type StatusSnapshot = z.infer<typeof statusSnapshot>;

/**
 * Where the views get the model: the host sees everything; a tenant's views pass its
 * uid and see only its own apps and events.
 */
export interface StatusSource {
  snapshot(filter?: { uid?: number }): StatusSnapshot;
  /** Restarts an app (rolling): false when no such app (of that uid). */
  restartApp(root: string, filter?: { uid?: number }): boolean;
  /** Stops one worker: false when no such worker (of that uid). */
  stopWorker(pid: number, filter?: { uid?: number }): boolean;
}
