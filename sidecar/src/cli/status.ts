import * as net from 'node:net';
import { z } from 'zod';
import { CONTROL_ANSWER_MAX, controlAnswer, controlPath } from '../status/control-protocol';
import { prometheusText } from '../status/prometheus';
import type { AppStatus, StatusSnapshot } from '../status/schema';
import { UsageError, readArgs } from './args';

const HELP = `usage: lodge status [--json | --metrics] [--watch] [--socket PATH]

Every tenant's apps as lodged sees them: state, workers, queue, requests, latency,
memory, kills, and the recent events. Root sees every tenant; any other user only
their own apps (lodged checks who asks).

  --json          the status as JSON (its schema: sidecar/src/status/schema.ts)
  --metrics       the status as Prometheus text (what the status page serves at ?metrics)
  --watch         refresh every second (with --json: one JSON line a second)
  --socket PATH   lodged's socket (default /run/lodge/lodged.sock); its control
                  socket is PATH.ctl
`;

const STATUS_OPTIONS = {
  help: { type: 'boolean' as const, short: 'h' },
  json: { type: 'boolean' as const },
  metrics: { type: 'boolean' as const },
  watch: { type: 'boolean' as const },
  socket: { type: 'string' as const },
};

const statusArgs = z
  .object({
    help: z.boolean().default(false),
    json: z.boolean().default(false),
    metrics: z.boolean().default(false),
    watch: z.boolean().default(false),
    socket: z.string().startsWith('/', { error: 'an absolute path' }).default('/run/lodge/lodged.sock'),
  })
  .strict();

/** How long lodged has to answer before `lodge status` gives up. */
const ASK_TIMEOUT_MS = 10_000;

export class ControlError extends Error {}

/** Asks lodged's control socket for the status; ControlError says why not. */
export function askStatus(socket: string): Promise<StatusSnapshot> {
  const path = controlPath(socket);
  return new Promise((resolve, reject) => {
    const c = net.connect(path);
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (msg: string) => {
      c.destroy();
      reject(new ControlError(msg));
    };
    c.setTimeout(ASK_TIMEOUT_MS, () => fail(`lodged at ${path} did not answer within ${ASK_TIMEOUT_MS / 1000} s`));
    c.on('connect', () => c.write('{"op":"status"}\n'));
    c.on('error', (err: NodeJS.ErrnoException) => fail(`cannot reach lodged at ${path}: ${err.code ?? err.message}`));
    c.on('data', (d: Buffer) => {
      size += d.length;
      if (size > CONTROL_ANSWER_MAX) return fail(`lodged's answer is over ${CONTROL_ANSWER_MAX} bytes`);
      chunks.push(d);
    });
    c.on('end', () => {
      let raw: unknown;
      try {
        raw = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return fail(`lodged's answer is not JSON (${size} bytes)`);
      }
      const r = controlAnswer.safeParse(raw);
      if (!r.success) return fail(`lodged's answer does not match the status schema: ${r.error.issues[0]?.message ?? ''} at ${r.error.issues[0]?.path.join('.') ?? ''}`);
      const a = r.data;
      if (!a.ok) return fail(`lodged: ${a.error}`);
      if (!('status' in a)) return fail('lodged answered without a status');
      resolve(a.status);
    });
  });
}

export async function statusMain(argv: string[]): Promise<number> {
  let args;
  try {
    args = readArgs(argv, STATUS_OPTIONS, statusArgs);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lodge status: ${err.message}\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const once = async (): Promise<boolean> => {
    let snap: StatusSnapshot;
    try {
      snap = await askStatus(args.socket);
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      process.stderr.write(`lodge status: ${err.message}\n`);
      return false;
    }
    if (args.metrics) process.stdout.write(prometheusText(snap));
    else if (args.json) process.stdout.write(`${JSON.stringify(snap, null, args.watch ? undefined : 2)}\n`);
    else process.stdout.write((args.watch ? '\x1b[H\x1b[2J' : '') + statusTable(snap));
    return true;
  };
  if (!args.watch) return (await once()) ? 0 : 1;
  for (;;) {
    await once();
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The status as a table for a terminal, then the last events. */
export function statusTable(snap: StatusSnapshot, events = 10): string {
  const l = snap.lodged;
  const apps = snap.tenants.flatMap((t) => t.apps.map((a) => ({ tenant: t.name ?? String(t.uid), a })));
  const head = `lodged ${l.version}, pid ${l.pid}, up ${duration(l.uptime)}; ${snap.tenants.length} tenant(s), ${apps.length} app(s)\n`;
  const rows = [['TENANT', 'APP', 'STATE', 'WORKERS', 'QUEUE', 'REQUESTS', '5XX', 'MEAN', 'P95', 'MEMORY', 'KILLS']];
  for (const { tenant, a } of apps) {
    rows.push([
      tenant,
      a.root,
      a.state,
      `${a.workers.filter((w) => w.state === 'busy' || w.state === 'lent').length}/${a.workers.length}/${a.limits.processes}`,
      `${a.queue.now} (${a.queue.peak})`,
      String(a.requests.total),
      String(a.requests['5xx']),
      ms(a.latency.mean),
      ms(a.latency.p95),
      mib(a.memory),
      kills(a),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
  const reasons = apps.filter(({ a }) => a.reason).map(({ a }) => `  ${a.root}: ${a.reason}`);
  const recent = snap.events.slice(-events).map((e) => `  ${new Date(e.at).toISOString()} ${e.kind} ${e.app ?? ''}: ${e.message}`);
  return [
    head,
    table,
    reasons.length ? `\nwhy:\n${reasons.join('\n')}` : '',
    recent.length ? `\nrecent events:\n${recent.join('\n')}` : '',
  ].join('\n').replace(/\n+$/, '') + '\n';
}

function kills(a: AppStatus): string {
  const parts = Object.entries(a.kills).filter(([, n]) => n > 0).map(([r, n]) => `${r}:${n}`);
  return parts.join(',') || '-';
}

function ms(s: number): string {
  return s === 0 ? '-' : s < 1 ? `${(s * 1000).toFixed(1)}ms` : `${s.toFixed(2)}s`;
}

function mib(b: number): string {
  return b === 0 ? '-' : `${(b / 1024 / 1024).toFixed(1)}M`;
}

function duration(s: number): string {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
