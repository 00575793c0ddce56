// One class per failure lodged reports, each with a stable code and the HTTP status
// mod_lodge answers with. Messages say what was expected and what came.

export class LodgeError extends Error {
  code = 'LODGE_E';
  status = 500;
  retryAfter = 0;
}

export class ConfigError extends LodgeError {
  code = 'LODGE_E_CONFIG';
}

/** The app may not run as asked (ownership, permissions, symlinks). */
export class RefusedError extends LodgeError {
  code = 'LODGE_E_REFUSED';
  status = 500;
}

export class AppStartError extends LodgeError {
  code = 'LODGE_E_START';
  status = 502;
}

export class WorkerDiedError extends LodgeError {
  code = 'LODGE_E_DIED';
  status = 502;
}

export class QueueFullError extends LodgeError {
  code = 'LODGE_E_QUEUE';
  status = 503;
  retryAfter = 5;
}

/**
 * The tenant holds as many requests as its share allows (over all its apps): refused
 * at once, not queued, so that one tenant never holds Apache's workers. A request of
 * its own finishing frees a place within seconds, hence the short Retry-After.
 */
export class TenantShareError extends LodgeError {
  code = 'LODGE_E_SHARE';
  status = 503;
  retryAfter = 2;
}

export class WorkerTimeoutError extends LodgeError {
  code = 'LODGE_E_TIMEOUT';
  status = 504;
}

export class ProtocolError extends LodgeError {
  code = 'LODGE_E_PROTOCOL';
  status = 502;
}

export class ShuttingDownError extends LodgeError {
  code = 'LODGE_E_STOPPING';
  status = 503;
  retryAfter = 1;
}

/** A worker went far over LodgeMemory, or the kernel's OOM killer acted in its group. */
export class MemoryLimitError extends LodgeError {
  code = 'LODGE_E_MEMORY';
  status = 502;
}

/** A request used more CPU time than LodgeCPU: stopped as a timeout is. */
export class CpuLimitError extends LodgeError {
  code = 'LODGE_E_CPU';
  status = 504;
}
