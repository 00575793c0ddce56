import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { StatusSnapshot, statusSnapshot } from '../../sidecar/src/status/schema';
import { Site } from './site';

const CLI = path.join(__dirname, '..', '..', 'sidecar', 'src', 'cli', 'main.js');

/** `lodge status --json` as root against the site's lodged, validated by its schema. */
export function statusJson(site: Site): StatusSnapshot {
  const r = spawnSync(process.execPath, [CLI, 'status', '--json', '--socket', site.sb.socket], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`lodge status --json exited ${r.status}: ${r.stderr}`);
  return statusSnapshot.parse(JSON.parse(r.stdout));
}
