import { Duplex } from 'node:stream';
import { FRAME_CHUNK_MAX } from '../protocol/constants';
import { END_FRAME, FrameType, encodeError, encodeFrame, encodeHead } from '../protocol/frames';

/** What a tunnel needs of its connection to mod_lodge (server/apache-conn.ts). */
export interface TunnelPeer {
  /** Writes a frame towards mod_lodge; false: wait for TunnelStream.drained(). */
  write(frame: Buffer): boolean;
  /** The tunnel sent its last frame (END, or ERROR if no HEAD went out). */
  ended(): void;
  pauseInput(): void;
  resumeInput(): void;
}

/** The handshake's answer is a few hundred bytes; more than this is no answer. */
const HANDSHAKE_MAX = 16 * 1024;

/**
 * The byte stream of a WebSocket that mod_lodge tunnels (APP flag TUNNEL), as a
 * Duplex that `ws` takes for a socket. `ws` writes its handshake answer as HTTP/1.1
 * text ("HTTP/1.1 101 ...", or a 400 with a body): that becomes a HEAD frame with
 * the same status and headers; every later byte goes out in DATA frames. What the
 * client sends comes in as BODY payloads (fromApache), and BODY_END, the client gone,
 * ends the readable side. Ending or destroying the stream sends END.
 */
export class TunnelStream extends Duplex {
  private headBytes: Buffer = Buffer.alloc(0);
  private headSent = false;
  private done = false;
  private waiting?: () => void;

  constructor(private readonly peer: TunnelPeer) {
    super();
  }

  /** A BODY payload from mod_lodge: the client's bytes. */
  fromApache(payload: Buffer): void {
    if (!this.push(payload)) this.peer.pauseInput();
  }

  /** BODY_END from mod_lodge: the client closed. */
  apacheEnded(): void {
    this.push(null);
  }

  /** mod_lodge's socket can take frames again. */
  drained(): void {
    const cb = this.waiting;
    this.waiting = undefined;
    cb?.();
  }

  override _read(): void {
    this.peer.resumeInput();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.done) return cb(new Error('the tunnel is closed'));
    let data = chunk;
    let ok = true;
    if (!this.headSent) {
      this.headBytes = Buffer.concat([this.headBytes, chunk]);
      const end = this.headBytes.indexOf('\r\n\r\n');
      if (end < 0) {
        return cb(this.headBytes.length > HANDSHAKE_MAX ? new Error(`no end of the response head in ${HANDSHAKE_MAX} bytes`) : null);
      }
      const head = parseHttpHead(this.headBytes.subarray(0, end).toString('latin1'));
      if (!head) return cb(new Error('the WebSocket answer is not an HTTP/1.1 response head'));
      data = this.headBytes.subarray(end + 4);
      this.headBytes = Buffer.alloc(0);
      this.headSent = true;
      ok = this.peer.write(encodeHead(head.status, head.headers));
    }
    for (let at = 0; at < data.length; at += FRAME_CHUNK_MAX) {
      ok = this.peer.write(encodeFrame(FrameType.DATA, data.subarray(at, at + FRAME_CHUNK_MAX)));
    }
    if (ok) cb();
    else this.waiting = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finish();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.finish();
    this.drained();
    cb(err);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.peer.write(this.headSent ? END_FRAME : encodeError(502, 0, 'the status WebSocket closed before it answered'));
    this.peer.ended();
  }
}

/** "HTTP/1.1 101 Switching Protocols\r\nName: value..." as a status and header pairs. */
export function parseHttpHead(text: string): { status: number; headers: Array<[string, string]> } | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.1 ([1-5][0-9][0-9])(?: |$)/.exec(lines[0]);
  if (!m) return undefined;
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) return undefined;
    headers.push([line.slice(0, i), line.slice(i + 1).trim()]);
  }
  return { status: Number(m[1]), headers };
}
