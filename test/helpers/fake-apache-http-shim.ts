import * as net from 'node:net';
import { FrameType } from '../../sidecar/src/protocol/frames';
import { FakeApache, STATUS_BASE, decodeHead } from './fake-apache';

/**
 * FakeApacheHttpShim (test-only): a tiny HTTP/1.1 server on 127.0.0.1 that does for a
 * real client (the `ws` client, a browser) what mod_lodge does for the status location:
 * each request under /lodge-status becomes FakeApache frames on lodged's socket, and
 * the answer goes back as HTTP. A WebSocket handshake gets the TUNNEL flag; after a 101
 * the client's bytes go as BODY frames and DATA frames come back as bytes, END closes
 * the client, the client's close sends BODY_END. One request per connection
 * (Connection: close), each on a lodged connection of its own.
 */
export class FakeApacheHttpShim {
  private server?: net.Server;
  private readonly tunnels = new Set<net.Socket>();
  /** Handshakes answered 503 by the shim itself, as if lodged could not be reached. */
  refuseTunnels = false;
  port = 0;

  constructor(private readonly socketPath: string, private readonly user = 'admin') {}

  async start(): Promise<void> {
    this.server = net.createServer((c) => this.serve(c));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}${STATUS_BASE}`;
  }

  /** Cuts every open WebSocket, as a lodged restart or a network loss would. */
  dropTunnels(): void {
    for (const t of this.tunnels) t.destroy();
    this.tunnels.clear();
  }

  async stop(): Promise<void> {
    this.dropTunnels();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private serve(c: net.Socket): void {
    c.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const [method, target] = lines[0].split(' ');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + length) return;
      c.off('data', onData);
      const body = buf.subarray(end + 4, end + 4 + length);
      const rest = buf.subarray(end + 4 + length);
      this.forward(c, method, target, headers, body, rest).catch(() => c.destroy());
    };
    c.on('data', onData);
  }

  private async forward(c: net.Socket, method: string, target: string, headers: Record<string, string>, body: Buffer, rest: Buffer): Promise<void> {
    const q = target.indexOf('?');
    const pathname = q < 0 ? target : target.slice(0, q);
    const query = q < 0 ? '' : target.slice(q + 1);
    if (pathname !== STATUS_BASE && !pathname.startsWith(`${STATUS_BASE}/`)) {
      return void c.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    }
    const tunnel = /websocket/i.test(headers.upgrade ?? '') && /upgrade/i.test(headers.connection ?? '') && method === 'GET';
    if (tunnel && this.refuseTunnels) {
      return void c.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    }
    delete headers['content-length'];
    const lodged = await FakeApache.connect(this.socketPath);
    c.on('close', () => {
      if (!tunnel) lodged.close();
    });
    lodged.send({ method, path: pathname.slice(STATUS_BASE.length), query, headers, body, user: this.user, tunnel });
    const first = await lodged.next();
    if (first.type !== FrameType.HEAD) {
      lodged.close();
      return void c.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    }
    const head = decodeHead(first.payload);
    if (tunnel && head.status === 101) return this.openTunnel(c, lodged, head, rest);
    const res = await lodged.bodyAfterHead();
    lodged.close();
    const lines = [`HTTP/1.1 ${head.status} X`, ...head.headers.map(([n, v]) => `${n}: ${v}`), `Content-Length: ${res.length}`, 'Connection: close'];
    c.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), res]));
  }

  private openTunnel(c: net.Socket, lodged: FakeApache, head: { status: number; headers: Array<[string, string]> }, rest: Buffer): void {
    this.tunnels.add(c);
    const lines = [`HTTP/1.1 101 Switching Protocols`, ...head.headers.map(([n, v]) => `${n}: ${v}`)];
    c.write(`${lines.join('\r\n')}\r\n\r\n`);
    lodged.takeFrames((f) => {
      if (f.type === FrameType.DATA) c.write(f.payload);
      else {
        // END, ERROR, or lodged gone: the client is closed.
        c.end();
        lodged.close();
      }
    });
    if (rest.length) lodged.sendBody(rest);
    c.on('data', (d: Buffer) => lodged.sendBody(d));
    c.on('close', () => {
      this.tunnels.delete(c);
      if (!lodged.isClosed) lodged.endBody();
      // mod_lodge waits for lodged's END, then lets go.
      setTimeout(() => lodged.close(), 5000).unref();
    });
  }
}
