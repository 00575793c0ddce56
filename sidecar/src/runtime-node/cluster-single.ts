import cluster from 'node:cluster';
import { log } from './process-io';

/**
 * An app written for `cluster` (`if (cluster.isPrimary) fork() else listen()`) runs its
 * worker's side: in Lodge, lodged is the primary and LodgeProcesses the number of
 * workers. Each worker process is one cluster worker to the app; fork() is refused with
 * the reason (a primary here would open a real port for its workers).
 */
export function singleProcessCluster(): void {
  const c = cluster as unknown as Record<string, unknown>;
  for (const [k, v] of [['isPrimary', false], ['isMaster', false], ['isWorker', true]] as const) {
    Object.defineProperty(c, k, { configurable: true, enumerable: true, value: v });
  }
  c.fork = () => {
    log('cluster.fork() is not available under Lodge: lodged starts the workers (LodgeProcesses)');
    throw new Error('cluster.fork() is not available under Lodge: lodged starts the workers (LodgeProcesses in .htaccess)');
  };
}
