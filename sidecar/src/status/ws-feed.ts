import { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { log } from '../log';
import { StatusSnapshot, StatusSource, TenantStatus } from './schema';

/** Snapshots go to every open page this often. */
export const FEED_INTERVAL_MS = 1000;
/** A page that has this much unsent is skipped for a tick (it catches up on the next). */
const SLOW_CLIENT_BYTES = 4 * 1024 * 1024;
/** The page sends nothing that needs more. */
const CLIENT_MESSAGE_MAX = 4096;

/**
 * What a page receives, as JSON text. The first message after connecting is `full`;
 * later ones carry only the tenants whose status changed since the last message to
 * that page (and the uids of those gone), so 1,000 idle tenants cost nothing per tick.
 */
export interface FeedMessage {
  type: 'snapshot';
  full: boolean;
  at: number;
  lodged: StatusSnapshot['lodged'];
  tenants: TenantStatus[];
  gone: number[];
  /** Only when they changed. */
  events?: StatusSnapshot['events'];
}

interface Client {
  ws: WebSocket;
  /** Each tenant's JSON as last sent, by uid. */
  sent: Map<number, string>;
  events: string;
}

/** The live side of the status page: the `ws` server and one timer for all pages. */
export class StatusFeed {
  /**
   * Made for the first page that opens the feed: `ws` is loaded only then, since its
   * modules cost lodged ~1.3 MiB of heap and ~3 MiB of memory in all (measured with
   * require('ws') in a bare node), which a host that never opens the page need not pay.
   */
  private wss?: WebSocketServer;
  private readonly clients = new Set<Client>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly source: StatusSource, private readonly intervalMs = FEED_INTERVAL_MS) {}

  /** Completes the handshake on the tunnel's stream (the Origin was checked before). */
  accept(method: string, url: string, headers: Record<string, string>, stream: Duplex): void {
    const req = { method, url, headers, socket: stream } as unknown as IncomingMessage;
    this.wss ??= new (require('ws') as typeof import('ws')).WebSocketServer({ noServer: true, maxPayload: CLIENT_MESSAGE_MAX, perMessageDeflate: false });
    this.wss.handleUpgrade(req, stream, Buffer.alloc(0), (ws) => this.add(ws));
  }

  get size(): number {
    return this.clients.size;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
  }

  private add(ws: WebSocket): void {
    const client: Client = { ws, sent: new Map(), events: '' };
    this.clients.add(client);
    ws.on('error', (err) => log.debug(`status WebSocket: ${err.message}`));
    ws.on('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    this.send(client, serialize(this.source.snapshot()), true);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
  }

  private tick(): void {
    const snap = serialize(this.source.snapshot());
    for (const c of this.clients) {
      if (c.ws.readyState !== c.ws.OPEN || c.ws.bufferedAmount > SLOW_CLIENT_BYTES) continue;
      this.send(c, snap, false);
    }
  }

  // The message is put together from each tenant's JSON, made once per tick for all
  // pages: with 1,000 tenants that is most of the cost.
  private send(c: Client, snap: Serialized, full: boolean): void {
    const tenants: string[] = [];
    const seen = new Set<number>();
    for (const [uid, json] of snap.tenants) {
      seen.add(uid);
      if (full || c.sent.get(uid) !== json) tenants.push(json);
      c.sent.set(uid, json);
    }
    const gone: number[] = [];
    for (const uid of c.sent.keys()) {
      if (!seen.has(uid)) {
        gone.push(uid);
        c.sent.delete(uid);
      }
    }
    const head = { type: 'snapshot', full, at: snap.at, lodged: snap.lodged, gone };
    const events = full || snap.events !== c.events ? `,"events":${snap.events}` : '';
    c.events = snap.events;
    c.ws.send(`${JSON.stringify(head).slice(0, -1)},"tenants":[${tenants.join(',')}]${events}}`);
  }
}

interface Serialized {
  at: number;
  lodged: StatusSnapshot['lodged'];
  tenants: Array<[number, string]>;
  events: string;
}

function serialize(snap: StatusSnapshot): Serialized {
  return {
    at: snap.at,
    lodged: snap.lodged,
    tenants: snap.tenants.map((t): [number, string] => [t.uid, JSON.stringify(t)]),
    events: JSON.stringify(snap.events),
  };
}
