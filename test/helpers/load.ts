import * as fs from 'node:fs';
import * as http from 'node:http';
import { Site, eventually } from './site';
import { RequestOptions } from './http';

/** One request of a load loop: when it ran, and how it ended. */
export interface Outcome {
  start: number;
  end: number;
  /** The HTTP status, or what went wrong below HTTP (or a 200 with the wrong body). */
  status: number | string;
  /** Which client sent it (ClientKind's name). */
  client: string;
}

/**
 * A kept-alive connection the server closed as the next request went out on it
 * (Apache closes idle ones at a graceful restart): nothing of the request was
 * answered, and a client sends it again on a new connection.
 */
export const CLOSED_IDLE = 'kept-alive connection closed before an answer';

/** What one client of a load loop sends, one request after another. */
export interface ClientKind {
  name: string;
  /** Kept-alive connection: one Apache process serves request after request. */
  keepAlive?: boolean;
  method?: 'GET' | 'POST';
  body?: string;
  /** The body a good answer has; from the request's body when a function. */
  expect: string | ((sent: string) => string);
}

/**
 * How long a load loop runs at most, and how many requests a client sends at most,
 * whether or not it is stopped: a test that failed before its stop() (an assertion
 * thrown) must not leave requests going out for the rest of the run, which kept the
 * test file from ever ending.
 */
export const LOOP_MAX_MS = 120_000;
export const LOOP_MAX_REQUESTS = 100_000;

/**
 * Clients that each send one request after another until stopped (or LOOP_MAX_MS),
 * and keep every outcome. The load of the tests that take lodged or Apache away under
 * traffic.
 */
export function clientLoop(site: Site, tenant: string, kinds: ClientKind[]) {
  const outcomes: Outcome[] = [];
  let running = true;
  const until = Date.now() + LOOP_MAX_MS;
  const client = async (kind: ClientKind) => {
    const agent = kind.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
    let n = 0;
    while (running && n < LOOP_MAX_REQUESTS && Date.now() < until) {
      const start = Date.now();
      const body = kind.body !== undefined ? `${kind.body}-${n}` : undefined;
      n++;
      const want = typeof kind.expect === 'function' ? kind.expect(body ?? '') : kind.expect;
      let status: number | string;
      try {
        const opts: RequestOptions = { method: kind.method, body, lenient: true, timeoutMs: 15_000, agent };
        const r = await site.get(tenant, '/', opts);
        status = r.status === 200 && r.text !== want ? `200 with '${r.text.slice(0, 40)}'` : r.status;
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
        status = e.reusedSocket && e.code === 'ECONNRESET' ? CLOSED_IDLE : e.message;
      }
      outcomes.push({ start, end: Date.now(), status, client: kind.name });
    }
    agent?.destroy();
  };
  const clients = kinds.map(client);
  return {
    outcomes,
    async stop(): Promise<Outcome[]> {
      running = false;
      await Promise.all(clients);
      return outcomes;
    },
  };
}

/** One reply of a replyLoop: when its request started, its status (0: no answer) and body. */
export interface Reply {
  start: number;
  status: number;
  text: string;
}

/**
 * `clients` requests to `/` of the tenant at a time, one after another, until stop()
 * (or LOOP_MAX_MS); every reply kept, in the order they came. Run a test's body with
 * withLoop, which stops it whatever the body does.
 */
export function replyLoop(site: Site, tenant: string, clients = 2) {
  const replies: Reply[] = [];
  let running = true;
  const until = Date.now() + LOOP_MAX_MS;
  const one = async () => {
    for (let n = 0; running && n < LOOP_MAX_REQUESTS && Date.now() < until; n++) {
      const start = Date.now();
      try {
        const r = await site.get(tenant, '/');
        replies.push({ start, status: r.status, text: r.text });
      } catch (err) {
        replies.push({ start, status: 0, text: String(err) });
      }
    }
  };
  const done = Promise.all(Array.from({ length: clients }, one));
  return { replies, stop: async (): Promise<Reply[]> => { running = false; await done; return replies; } };
}

/** body(loop) with a replyLoop running, stopped when the body ends or throws. */
export async function withLoop<T>(site: Site, tenant: string, body: (loop: ReturnType<typeof replyLoop>) => Promise<T>, clients = 2): Promise<T> {
  const loop = replyLoop(site, tenant, clients);
  try {
    return await body(loop);
  } finally {
    await loop.stop();
  }
}

/** "12x 200, 3x 503": what a list of outcomes came to. */
export function tally(outcomes: Outcome[]): string {
  const counts = new Map<number | string, number>();
  for (const o of outcomes) counts.set(o.status, (counts.get(o.status) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n}x ${s}`).join(', ');
}

export function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined; // gone
  }
}

export function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p: number | undefined = pid; p !== undefined && p > 1; p = parentOf(p)) {
    if (p === ancestor) return true;
  }
  return false;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** apachectl graceful, `times` times, each once Apache says it resumed from the last. */
export async function gracefulRestarts(site: Site, times: number, pauseMs: number): Promise<void> {
  const resumed = () => (site.errorLog().match(/resuming normal operations/g) ?? []).length;
  for (let i = 0; i < times; i++) {
    const before = resumed();
    site.sb.apachectl('graceful');
    await eventually(() => resumed() > before, 'Apache says it resumed after the graceful restart');
    await sleep(pauseMs);
  }
}
