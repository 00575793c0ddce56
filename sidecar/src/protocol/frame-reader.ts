import { FRAME_HEADER_SIZE, FRAME_MAX } from './constants';
import { frameName } from './frames';

/**
 * Splits a byte stream into frames. Chunks are sliced, not copied, whenever a frame
 * lies inside one chunk (the common case on the hot path); only a frame that spans
 * chunks is gathered into a buffer of its own.
 *
 * `frame` is the whole frame, header included, so it can be forwarded as it came.
 */
export type FrameHandler = (type: number, frame: Buffer) => void;

export class FrameError extends Error {
  readonly code = 'LODGE_E_FRAME';
}

/**
 * The largest payload taken for a frame type at this point of the stream, or
 * undefined when that type is not expected at all: checked on the 8-byte header,
 * before any of the payload is held.
 */
export type FrameLimit = (type: number) => number | undefined;

export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = FRAME_HEADER_SIZE; // bytes of the frame being gathered (header, then whole frame)

  private readonly limit: FrameLimit;

  constructor(private readonly onFrame: FrameHandler, maxPayload: number | FrameLimit = FRAME_MAX) {
    this.limit = typeof maxPayload === 'number' ? () => maxPayload : maxPayload;
  }

  /** Throws FrameError on a frame over its size limit or not expected; the caller closes the stream. */
  push(chunk: Buffer): void {
    let at = 0;
    if (this.pendingBytes > 0) {
      at = this.fillPending(chunk);
      if (at < 0) return;
    }
    while (chunk.length - at >= FRAME_HEADER_SIZE) {
      const len = chunk.readUInt32BE(at + 4);
      this.checkLength(chunk[at], len);
      const end = at + FRAME_HEADER_SIZE + len;
      if (end > chunk.length) break;
      this.onFrame(chunk[at], chunk.subarray(at, end));
      at = end;
    }
    if (at < chunk.length) {
      const rest = chunk.subarray(at);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
      this.need = rest.length >= FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE + rest.readUInt32BE(4) : FRAME_HEADER_SIZE;
    }
  }

  /** True when no partial frame is held. */
  get idle(): boolean {
    return this.pendingBytes === 0;
  }

  private checkLength(type: number, len: number): void {
    const max = this.limit(type);
    if (max === undefined) throw new FrameError(`${frameName(type)} frame is not expected here`);
    if (len > max) throw new FrameError(`${frameName(type)} frame of ${len} bytes is over the ${max}-byte limit`);
  }

  // Completes the held partial frame from the chunk; returns where the chunk's
  // unread part starts, or -1 if the chunk was used up.
  private fillPending(chunk: Buffer): number {
    let at = 0;
    for (;;) {
      const take = Math.min(this.need - this.pendingBytes, chunk.length - at);
      this.pending.push(chunk.subarray(at, at + take));
      this.pendingBytes += take;
      at += take;
      if (this.pendingBytes < this.need) return -1;
      const held = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [held];
      if (this.need === FRAME_HEADER_SIZE) {
        const len = held.readUInt32BE(4);
        this.checkLength(held[0], len);
        this.need = FRAME_HEADER_SIZE + len;
        if (len > 0) continue;
      }
      this.pending = [];
      this.pendingBytes = 0;
      this.need = FRAME_HEADER_SIZE;
      this.onFrame(held[0], held);
      return at;
    }
  }
}
