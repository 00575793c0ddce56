import { PROMETHEUS_BUCKETS } from './latency';
import type { AppStatus, StatusSnapshot, TenantStatus, WorkerStatus } from './schema';

/**
 * The status as Prometheus text (exposition format 0.0.4): base units (seconds,
 * bytes), `_total` counters, HELP and TYPE before each family, label values escaped,
 * no per-pid label (a pid is a new series each restart). `tenant` is the user name,
 * the uid where there is none; `app` the app directory. Most apps of a host are idle,
 * so what is zero for most is left out rather than written for every app: worker
 * states with no worker, kill reasons that never happened, the histogram of an app
 * that never had a request (with 1,000 apps, the zeros were 3 MB of the text).
 */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const WORKER_STATES: WorkerStatus['state'][] = ['starting', 'idle', 'busy', 'lent', 'stopping'];
const CODES = ['2xx', '3xx', '4xx', '5xx'] as const;

interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  lines: string[];
}

/** A label value as the format wants it: backslash, double quote and newline escaped. */
export function escapeLabel(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(n: number): string {
  return n === Infinity ? '+Inf' : Number.isFinite(n) ? String(n) : 'NaN';
}

export function prometheusText(snap: StatusSnapshot): string {
  const fam = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, lines: [] });
  const up = fam('lodge_up', 'gauge', 'Whether lodged answered (1).');
  const build = fam('lodge_build_info', 'gauge', 'The running lodged, by version.');
  const uptime = fam('lodge_uptime_seconds', 'gauge', 'Seconds since lodged started.');
  const requests = fam('lodge_requests_total', 'counter', 'Requests ended, by status class (unknown: lodged did not see the status of a response mod_lodge carried).');
  const duration = fam('lodge_request_duration_seconds', 'histogram', 'Time from the request reaching lodged to its response ending.');
  const workers = fam('lodge_workers', 'gauge', 'Worker processes by state.');
  const memory = fam('lodge_memory_bytes', 'gauge', 'Resident memory of the app\'s workers.');
  const queue = fam('lodge_queue_length', 'gauge', 'Requests waiting for a worker.');
  const kills = fam('lodge_watchdog_kills_total', 'counter', 'Workers stopped, by why.');
  const restarts = fam('lodge_restarts_total', 'counter', 'Workers that died or were stopped and are replaced on demand.');
  const capReached = fam('lodge_worker_cap_reached_total', 'counter', 'Requests that found every worker busy at the app\'s cap.');
  up.lines.push(`lodge_up 1`);
  build.lines.push(`lodge_build_info{version="${escapeLabel(snap.lodged.version)}"} 1`);
  uptime.lines.push(`lodge_uptime_seconds ${num(snap.lodged.uptime)}`);
  const le = snap.buckets ?? PROMETHEUS_BUCKETS;
  for (const t of snap.tenants) {
    const tenant = `tenant="${escapeLabel(tenantLabel(t))}"`;
    for (const a of t.apps) {
      // The labels every line of the app shares, escaped once.
      const id = `${tenant},app="${escapeLabel(a.root)}"`;
      for (const code of CODES) requests.lines.push(`lodge_requests_total{${id},code="${code}"} ${a.requests[code]}`);
      if (a.requests.unseen) requests.lines.push(`lodge_requests_total{${id},code="unknown"} ${a.requests.unseen}`);
      if (a.histogram) histogramLines(duration, id, a.histogram, le);
      for (const state of WORKER_STATES) {
        let n = 0;
        for (const w of a.workers) if (w.state === state) n++;
        if (n > 0) workers.lines.push(`lodge_workers{${id},state="${state}"} ${n}`);
      }
      memory.lines.push(`lodge_memory_bytes{${id}} ${a.memory}`);
      queue.lines.push(`lodge_queue_length{${id}} ${a.queue.now}`);
      for (const [reason, n] of Object.entries(a.kills)) if (n > 0) kills.lines.push(`lodge_watchdog_kills_total{${id},reason="${escapeLabel(reason)}"} ${n}`);
      restarts.lines.push(`lodge_restarts_total{${id}} ${a.restarts}`);
      capReached.lines.push(`lodge_worker_cap_reached_total{${id}} ${a.capReached}`);
    }
  }
  let out = '';
  for (const f of [up, build, uptime, requests, duration, workers, memory, queue, kills, restarts, capReached]) {
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${f.name} ${f.type}\n`;
    if (f.lines.length) out += `${f.lines.join('\n')}\n`;
  }
  return out;
}

function tenantLabel(t: TenantStatus): string {
  return t.name ?? String(t.uid);
}

function histogramLines(f: Family, id: string, h: NonNullable<AppStatus['histogram']>, le: number[]): void {
  for (let i = 0; i < le.length; i++) f.lines.push(`${f.name}_bucket{${id},le="${num(le[i])}"} ${h.counts[i] ?? 0}`);
  f.lines.push(`${f.name}_bucket{${id},le="+Inf"} ${h.count}`);
  f.lines.push(`${f.name}_sum{${id}} ${num(h.sum)}`);
  f.lines.push(`${f.name}_count{${id}} ${h.count}`);
}
