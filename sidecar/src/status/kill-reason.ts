import type { LodgeError } from '../errors';
import type { KillReason } from './schema';

export type { KillReason };

/** The watchdog behind an error that stopped a worker (guard.ts stops for CPU and memory). */
export function killReasonOf(err: LodgeError): KillReason {
  switch (err.code) {
    case 'LODGE_E_CPU':
      return 'cpu';
    case 'LODGE_E_MEMORY':
      return 'memory';
    case 'LODGE_E_TIMEOUT':
      return 'timeout';
    default:
      return 'protocol';
  }
}
