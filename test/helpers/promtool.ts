import { spawnSync } from 'node:child_process';

/**
 * `promtool check metrics` on a Prometheus text: its complaints, '' when it passes.
 * Throws when promtool is missing (Debian's `prometheus` package, which
 * scripts/build.js installs): a missing checker is a failure, not a skip.
 */
export function promtoolCheck(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool cannot run (${(r.error as NodeJS.ErrnoException).code}): install Debian's 'prometheus' package`);
  if (r.status !== 0) return `${r.stdout}${r.stderr}`.trim() || `promtool exited with ${r.status}`;
  // promtool prints lint findings (and exits 0 for some): any output is a finding.
  return `${r.stdout}${r.stderr}`.trim();
}
