import { FRAME_HEADER_SIZE, FRAME_MAX } from './constants';
import { frameName } from './frames';
import { FrameError } from './frame-reader';

/**
 * Finds frame boundaries in a stream that is being forwarded as it comes, without
 * gathering frames: bodies and responses pass through lodged as the very slices the
 * kernel handed it. Only the 8-byte headers are looked at.
 *
 * scan() returns the offset just past the frame that ends the exchange (a type for
 * which `isLast` is true), or -1 if the chunk ends before one does. Bytes up to that
 * offset belong to the exchange and can be forwarded unchanged.
 */
export class FrameScanner {
  private remaining = 0; // payload bytes of the current frame not yet seen
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headFill = 0;
  private lastPending = false;

  constructor(
    private readonly isLast: (type: number) => boolean,
    private readonly allowed: (type: number) => boolean,
  ) {}

  /** True between frames: safe to hand the stream to a FrameReader. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headFill === 0 && !this.lastPending;
  }

  scan(chunk: Buffer): number {
    let at = 0;
    for (;;) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        this.remaining -= take;
        at += take;
        if (this.remaining > 0) return -1;
      }
      if (this.lastPending) {
        this.lastPending = false;
        return at;
      }
      if (at >= chunk.length) return -1;
      // Read a header, possibly split across chunks.
      const take = Math.min(FRAME_HEADER_SIZE - this.headFill, chunk.length - at);
      chunk.copy(this.head, this.headFill, at, at + take);
      this.headFill += take;
      at += take;
      if (this.headFill < FRAME_HEADER_SIZE) return -1;
      this.headFill = 0;
      const type = this.head[0];
      const len = this.head.readUInt32BE(4);
      if (!this.allowed(type)) throw new FrameError(`${frameName(type)} frame is not expected here`);
      if (len > FRAME_MAX) throw new FrameError(`${frameName(type)} frame of ${len} bytes is over the ${FRAME_MAX}-byte limit`);
      this.remaining = len;
      if (this.isLast(type)) this.lastPending = true;
    }
  }
}
