import * as net from 'node:net';
import { FrameReader } from '../../sidecar/src/protocol/frame-reader';
import { APP_TUNNEL, BODY_END_FRAME, FrameType, decodeError, decodePairs, encodeFrame, encodePairs } from '../../sidecar/src/protocol/frames';

/**
 * FakeApache (test-only): plays mod_lodge's side of the status location on lodged's
 * socket, frame by frame, as /work/notes/status-protocol.md has it: `APP kind=status`
 * (flag TUNNEL for a WebSocket handshake), `REQ` with the environ, `BODY`… `BODY_END`;
 * it reads `HEAD`, `DATA`…, `END` or `ERROR`. One request at a time per connection,
 * like an Apache child.
 */
export interface FakeRequest {
  method?: string;
  /** PATH_INFO under the location. */
  path?: string;
  query?: string;
  /** HTTP headers by lower-case name: they become HTTP_* pairs. */
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** REMOTE_USER: who Apache authenticated. */
  user?: string;
  tunnel?: boolean;
  /** More APP pairs than kind=status (a malformed APP). */
  appPairs?: Array<[string, string]>;
  /** An app's APP pairs (root, kind, entry) instead of the status location's. */
  app?: Array<[string, string]>;
}

export interface FakeResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  /** The ERROR frame's message, when lodged answered with one. */
  error?: string;
  header(name: string): string | undefined;
}

export const STATUS_BASE = '/lodge-status';

type Frame = { type: number; payload: Buffer };

export class FakeApache {
  private readonly frames: Frame[] = [];
  private wake?: () => void;
  private closed = false;
  /** Called for each frame once a tunnel is open (DATA, END, ERROR). */
  onTunnelFrame?: (f: Frame) => void;

  private constructor(private readonly socket: net.Socket) {
    const reader = new FrameReader((type, frame) => {
      const f = { type, payload: Buffer.from(frame.subarray(8)) };
      if (this.onTunnelFrame) return this.onTunnelFrame(f);
      this.frames.push(f);
      this.wake?.();
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
      this.onTunnelFrame?.({ type: -1, payload: Buffer.alloc(0) });
    });
    socket.on('error', () => {});
  }

  static connect(socketPath: string): Promise<FakeApache> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(new FakeApache(s)));
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Sends the request's frames (no BODY_END for a tunnel). */
  send(r: FakeRequest): void {
    const app = encodeFrame(FrameType.APP, encodePairs([...(r.app ?? [['kind', 'status']]), ...(r.appPairs ?? [])]));
    if (r.tunnel) app[1] = APP_TUNNEL;
    const body = r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body);
    const env: Array<[string, string]> = [
      ['REQUEST_METHOD', r.method ?? 'GET'],
      ['SCRIPT_NAME', STATUS_BASE],
      ['PATH_INFO', r.path ?? ''],
      ['QUERY_STRING', r.query ?? ''],
      ['REMOTE_ADDR', '127.0.0.1'],
      ['wsgi.url_scheme', 'http'],
    ];
    const headers = { host: 'status.localhost', ...r.headers };
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'content-type') env.push(['CONTENT_TYPE', value]);
      else env.push([`HTTP_${name.toUpperCase().replace(/-/g, '_')}`, value]);
    }
    if (body.length) env.push(['CONTENT_LENGTH', String(body.length)]);
    if (r.user !== undefined) env.push(['REMOTE_USER', r.user], ['AUTH_TYPE', 'Basic']);
    const out = [app, encodeFrame(FrameType.REQ, encodePairs(env))];
    for (let at = 0; at < body.length; at += 64 * 1024) out.push(encodeFrame(FrameType.BODY, body.subarray(at, at + 64 * 1024)));
    if (!r.tunnel) out.push(BODY_END_FRAME);
    this.socket.write(Buffer.concat(out));
  }

  /** An ordinary exchange: the request, then HEAD DATA… END (or ERROR). */
  async request(r: FakeRequest): Promise<FakeResponse> {
    this.send(r);
    return this.response();
  }

  /** Reads one response: HEAD, DATA… up to END; or ERROR. */
  async response(): Promise<FakeResponse> {
    const first = await this.next();
    if (first.type === FrameType.ERROR) {
      const e = decodeError(first.payload);
      return makeResponse(e.status, [], Buffer.alloc(0), e.message);
    }
    if (first.type !== FrameType.HEAD) throw new Error(`expected HEAD, got frame type ${first.type}`);
    const { status, headers } = decodeHead(first.payload);
    return makeResponse(status, headers, await this.bodyAfterHead());
  }

  /** After the HEAD: the DATA payloads up to END. */
  async bodyAfterHead(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const f = await this.next();
      if (f.type === FrameType.END) return Buffer.concat(parts);
      if (f.type !== FrameType.DATA) throw new Error(`expected DATA or END, got frame type ${f.type}`);
      parts.push(f.payload);
    }
  }

  /** The next frame lodged sent (rejects when the connection closes first). */
  async next(): Promise<Frame> {
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('lodged closed the connection');
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
    return this.frames.shift()!;
  }

  /** Tunnel bytes from the client: one BODY frame. */
  sendBody(bytes: Buffer): void {
    this.socket.write(encodeFrame(FrameType.BODY, bytes));
  }

  /** The client closed its side of the tunnel. */
  endBody(): void {
    this.socket.write(BODY_END_FRAME);
  }

  /** From now on, frames go to `fn` (the tunnel's DATA, then END). */
  takeFrames(fn: (f: Frame) => void): void {
    this.onTunnelFrame = fn;
    for (const f of this.frames.splice(0)) fn(f);
  }

  /** Back to request/response after a tunnel. */
  releaseFrames(): void {
    this.onTunnelFrame = undefined;
  }
}

export function decodeHead(payload: Buffer): { status: number; headers: Array<[string, string]> } {
  return { status: payload.readUInt16BE(0), headers: decodePairs(payload, 2) };
}

function makeResponse(status: number, headers: Array<[string, string]>, body: Buffer, error?: string): FakeResponse {
  return {
    status, headers, body, error,
    header: (name) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
  };
}
