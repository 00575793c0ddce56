import * as fs from 'node:fs';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer } from 'ws';
import { APP_TUNNEL, FrameType, decodePairs, encodeFrame, encodeGrant, encodePairs } from '../../sidecar/src/protocol/frames';
import { FakeSocketServer } from './fake-socket';
import { sendWithFd, socketFd, socketPair } from '../../sidecar/src/posix';

/** One request as the fake saw it on mod_lodge's connection. */
export interface SeenRequest {
  flags: number;
  app: Map<string, string>;
  req: Map<string, string>;
  body: Buffer[];
  /** What happened after REQ, in order: 'BODY', 'BODY_END', 'HEAD 101', 'END', 'closed'... */
  events: string[];
}

/** A 'data' handler that calls onFrame once per whole frame, however the bytes arrive. */
const frameSplitter = (onFrame: (type: number, flags: number, payload: Buffer) => void): ((d: Buffer) => void) => {
  let buf = Buffer.alloc(0);
  return (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 8 && buf.length >= 8 + buf.readUInt32BE(4)) {
      const payload = Buffer.from(buf.subarray(8, 8 + buf.readUInt32BE(4)));
      const [type, flags] = [buf[0], buf[1]];
      buf = buf.subarray(8 + payload.length);
      onFrame(type, flags, payload);
    }
  };
};

const head = (status: number, headers: Array<[string, string]>): Buffer => {
  const pairs = encodePairs(headers);
  const payload = Buffer.alloc(2 + pairs.length);
  payload.writeUInt16BE(status, 0);
  pairs.copy(payload, 2);
  return encodeFrame(FrameType.HEAD, payload);
};

/**
 * Stands in for lodged on its socket (a fake, named as such), for mod_lodge's side of
 * the status location and the tunnel before lodged has them:
 * - a request that is not TUNNEL-flagged gets, after its BODY_END, HEAD 200 and one DATA
 *   naming what it saw (kind, REMOTE_USER, SCRIPT_NAME, PATH_INFO, body length), END;
 * - a TUNNEL request is answered by its PATH_INFO: `/refuse` HEAD 403 DATA END; `/raw`
 *   HEAD 101, DATA "hello", END; `/quiet` HEAD 101 and nothing more; anything else a
 *   WebSocket echo server (the `ws` package, on a Duplex whose writes become frames: its
 *   101 head a HEAD, the rest DATA; BODY payloads its reads, BODY_END its end; its close
 *   END), which closes from its side when a message says "bye"; `/lent` the same echo
 *   server as a worker lent to mod_lodge (GRANT with one end of a socket pair), whose
 *   RELEASE then comes on the connection.
 */
export class FakeLodged {
  requests: SeenRequest[] = [];
  /** Frames that broke the protocol as the fake reads it (e.g. APP while a request was open). */
  faults: string[] = [];
  private listener!: FakeSocketServer;
  private wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 });

  private constructor() {}

  static async listen(path: string): Promise<FakeLodged> {
    const f = new FakeLodged();
    f.listener = await FakeSocketServer.listen(path, (c) => f.serve(c));
    return f;
  }

  /** The last request whose REQUEST_URI starts with uri. */
  last(uri: string): SeenRequest | undefined {
    return this.requests.filter((r) => (r.req.get('REQUEST_URI') ?? '').startsWith(uri)).at(-1);
  }

  private serve(c: net.Socket): void {
    c.on('error', () => c.destroy());
    let cur: SeenRequest | undefined;
    // open: BODY frames belong to cur; tunnel: they feed the WebSocket; done: cur's
    // answer is out, and only its BODY_END (after a tunnel's BODY frames) may follow.
    let state: 'idle' | 'open' | 'tunnel' | 'done' | 'lent' = 'idle';
    let duplex: Duplex | undefined;
    c.on('close', () => {
      cur?.events.push('closed');
      duplex?.destroy();
    });
    const send = (b: Buffer) => {
      if (!c.destroyed) c.write(b);
    };
    const answerTunnel = (r: SeenRequest) => {
      const path = r.req.get('PATH_INFO') ?? '';
      if (path.endsWith('/refuse')) {
        send(head(403, [['Content-Type', 'text/plain'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade']]));
        send(encodeFrame(FrameType.DATA, Buffer.from('no tunnel here')));
        send(encodeFrame(FrameType.END));
        r.events.push('HEAD 403', 'END');
        state = 'done';
        return;
      }
      if (path.endsWith('/raw') || path.endsWith('/quiet')) {
        send(head(101, [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['X-Fake', 'raw']]));
        r.events.push('HEAD 101');
        state = 'tunnel';
        if (path.endsWith('/raw')) {
          send(encodeFrame(FrameType.DATA, Buffer.from('hello')));
          send(encodeFrame(FrameType.END));
          r.events.push('END');
          state = 'done';
        }
        return;
      }
      if (path.endsWith('/lent')) {
        this.lend(r, c);
        state = 'lent';
        return;
      }
      duplex = this.websocket(r, send, () => {
        if (state === 'tunnel') state = 'done';
        else if (cur === r && state === 'done') state = 'idle';
      });
      state = 'tunnel';
    };
    c.on(
      'data',
      frameSplitter((type, flags, payload) => {
        if (type === FrameType.APP) {
          if (state !== 'idle') this.faults.push(`APP while a request was ${state}`);
          cur = { flags, app: new Map(decodePairs(payload)), req: new Map(), body: [], events: [] };
          this.requests.push(cur);
          state = 'open';
        } else if (!cur) {
          this.faults.push(`frame 0x${type.toString(16)} before any APP`);
        } else if (type === FrameType.REQ) {
          cur.req = new Map(decodePairs(payload));
          if (cur.flags & APP_TUNNEL) answerTunnel(cur);
        } else if (type === FrameType.BODY) {
          cur.events.push('BODY');
          cur.body.push(payload);
          if (state === 'tunnel') duplex?.push(payload);
        } else if (type === FrameType.BODY_END) {
          cur.events.push('BODY_END');
          if (state === 'tunnel' && duplex) {
            duplex.push(null);
            // The WebSocket's close (END) ends the exchange; nothing more comes in.
            state = 'done';
          } else if (state === 'open') {
            this.answerPlain(cur, send);
            state = 'idle';
          } else {
            state = 'idle';
          }
        } else if (type === FrameType.RELEASE && state === 'lent') {
          cur.events.push(`RELEASE ${payload[0]}`);
          state = 'idle';
        } else {
          this.faults.push(`frame 0x${type.toString(16)} from mod_lodge`);
        }
      }),
    );
  }

  /** GRANT: one end of a socket pair to mod_lodge; on the other, the WebSocket echo as the worker. */
  private lend(r: SeenRequest, c: net.Socket): void {
    const [mine, theirs] = socketPair();
    const grant = encodeGrant(30, process.pid);
    const sent = sendWithFd(socketFd(c), grant, theirs);
    fs.closeSync(theirs);
    if (sent !== grant.length) this.faults.push('GRANT not sent whole');
    r.events.push('GRANT');
    const w = new net.Socket({ fd: mine, readable: true, writable: true });
    w.on('error', () => w.destroy());
    const duplex = this.websocket(r, (b) => {
      if (!w.destroyed) w.write(b);
    }, () => {});
    w.on(
      'data',
      frameSplitter((type, _flags, payload) => {
        if (type === FrameType.BODY) duplex.push(payload);
        else if (type === FrameType.BODY_END) {
          r.events.push('BODY_END');
          duplex.push(null);
        } else this.faults.push(`frame 0x${type.toString(16)} on the lent socket`);
      }),
    );
    w.on('close', () => duplex.destroy());
  }

  private answerPlain(r: SeenRequest, send: (b: Buffer) => void): void {
    const seen = {
      kind: r.app.get('kind'),
      user: r.req.get('REMOTE_USER') ?? null,
      scriptName: r.req.get('SCRIPT_NAME'),
      pathInfo: r.req.get('PATH_INFO'),
      query: r.req.get('QUERY_STRING'),
      body: Buffer.concat(r.body).length,
    };
    send(head(200, [['Content-Type', 'application/json']]));
    send(encodeFrame(FrameType.DATA, Buffer.from(JSON.stringify(seen))));
    send(encodeFrame(FrameType.END));
    r.events.push('HEAD 200', 'END');
  }

  /** A WebSocket echo server on a Duplex of frames; ended() runs once its END is out. */
  private websocket(r: SeenRequest, send: (b: Buffer) => void, ended: () => void): Duplex {
    let headSent = false;
    let endSent = false;
    const end = () => {
      if (endSent) return;
      endSent = true;
      send(encodeFrame(FrameType.END));
      r.events.push('END');
      ended();
    };
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (!headSent) {
          // ws writes its 101 head in one piece: it becomes the HEAD frame.
          headSent = true;
          const lines = chunk.toString('latin1').split('\r\n').filter((l) => l.length > 0);
          const status = Number(lines[0].split(' ')[1]);
          const headers = lines.slice(1).map((l): [string, string] => {
            const i = l.indexOf(':');
            return [l.slice(0, i), l.slice(i + 1).trim()];
          });
          send(head(status, headers));
          r.events.push(`HEAD ${status}`);
        } else {
          for (let i = 0; i < chunk.length; i += 65536) send(encodeFrame(FrameType.DATA, chunk.subarray(i, i + 65536)));
        }
        cb();
      },
      final(cb) {
        end();
        cb();
      },
      destroy(err, cb) {
        end();
        cb(err);
      },
    });
    // ws calls these on a net.Socket; a Duplex has no timer or Nagle to set.
    Object.assign(duplex, { setTimeout: () => duplex, setNoDelay: () => duplex, setKeepAlive: () => duplex });
    const headers: Record<string, string> = {};
    for (const [k, v] of r.req) if (k.startsWith('HTTP_')) headers[k.slice(5).toLowerCase().replace(/_/g, '-')] = v;
    const req = { method: r.req.get('REQUEST_METHOD'), url: r.req.get('REQUEST_URI'), headers } as unknown as IncomingMessage;
    this.wss.handleUpgrade(req, duplex as unknown as net.Socket, Buffer.alloc(0), (ws) => {
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'bye') ws.close(1000, 'bye');
        else ws.send(data, { binary: isBinary });
      });
      ws.on('error', () => ws.terminate());
    });
    return duplex;
  }

  async close(): Promise<void> {
    this.wss.close();
    await this.listener.close();
  }
}
