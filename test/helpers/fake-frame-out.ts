import type { FrameOut } from '../../sidecar/src/runtime-node/exchange';

/** A FrameOut in lodged's place: the frames sent kept in order; `full` makes send() say the socket is full until `drain()`. */
export type FakeFrameOut = FrameOut & {
  frames: Array<{ type: number; payload: Buffer }>;
  full: boolean;
  paused: boolean;
  drain(): void;
};

export function fakeFrameOut(): FakeFrameOut {
  const waiting: Array<() => void> = [];
  const out: FakeFrameOut = {
    frames: [],
    full: false,
    paused: false,
    send: (f: Buffer) => (out.frames.push({ type: f[0], payload: Buffer.from(f.subarray(8)) }), !out.full),
    onDrain: (fn) => void waiting.push(fn),
    pauseInput: () => void (out.paused = true),
    resumeInput: () => void (out.paused = false),
    drain() {
      out.full = false;
      for (const fn of waiting.splice(0)) fn();
    },
  };
  return out;
}
