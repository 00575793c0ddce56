import WebSocket from 'ws';
import { Site } from './site';

export type WsMessage = { data: Buffer; binary: boolean };

/**
 * A WebSocket client through Apache to a tenant: every message is queued from the first
 * (an app may greet at once, before a test could listen for it).
 */
export class WsClient {
  readonly ws: WebSocket;
  private readonly queue: WsMessage[] = [];
  private readonly waiting: Array<(m: WsMessage) => void> = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(site: Site, tenant: string, path: string, protocols: string[] = []) {
    this.ws = new WebSocket(`ws://127.0.0.1:${site.sb.port}${path}`, protocols, { headers: { Host: `${tenant}.localhost:${site.sb.port}` } });
    this.ws.on('message', (data, binary) => {
      const m = { data: data as Buffer, binary };
      const w = this.waiting.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      // The status, for a test that expects a refusal.
      this.ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`the handshake got ${res.statusCode}, not 101`), { status: res.statusCode })));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** The next message, or a failure naming it (a safety net, not a timing). */
  next(what: string): Promise<WsMessage> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      setTimeout(() => reject(new Error(`${what} never came`)), 20_000).unref();
    });
  }
}

/** A client whose handshake succeeded. */
export async function wsConnect(site: Site, tenant: string, path: string, protocols: string[] = []): Promise<WsClient> {
  const c = new WsClient(site, tenant, path, protocols);
  await c.opened;
  return c;
}
