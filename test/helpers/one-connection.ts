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
