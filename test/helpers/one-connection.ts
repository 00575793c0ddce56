import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { Site } from './site';

export interface KeptReply {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * Requests to one tenant on one kept-alive connection: one Apache process (and, on
 * 2.4, thread) serves them all, so what it remembers between requests (an app's
 * route) holds for each of them.
 */
export function oneConnection(site: Site, tenant: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send = (p: string, body?: Buffer) =>
    new Promise<KeptReply>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: site.sb.port, path: p, method: body ? 'POST' : 'GET', agent, headers: { Host: `${tenant}.localhost`, ...(body ? { 'Content-Length': String(body.length) } : {}) }, timeout: 10_000 },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString(), headers: res.headers }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/**
 * `p` on each connection at once, to an app that answers "pid most" (its most requests
 * in hand at one time so far): all are 200 from the worker `pid`, and it held at least
 * two of them together.
 */
export async function servedAtOnce(conns: Array<ReturnType<typeof oneConnection>>, p: string, pid: string): Promise<void> {
  const replies = await Promise.all(conns.map((c) => c.send(p)));
  for (const r of replies) assert.equal(r.status, 200, r.text);
  assert.equal(replies[0].text.split(' ')[0], pid, 'one worker (LodgeProcesses 1)');
  assert.ok(Math.max(...replies.map((r) => Number(r.text.split(' ')[1]))) >= 2, `requests ran at once in it: ${replies.map((r) => r.text)}`);
}
