import { ChildProcess, StdioOptions, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { Socket } from 'node:net';
import { socketPair } from '../../sidecar/src/posix';
import { LANE_FD_FIRST, WORKER_FD } from '../../sidecar/src/protocol/constants';
import { BODY_END_FRAME, FrameType, encodeFrame, encodePairs, frameName } from '../../sidecar/src/protocol/frames';
import { SPAWN_HELPER } from '../../sidecar/src/pool/worker-process';
import type { TestUser } from './users';

/** One frame a lane of the runtime sent. */
export interface LaneFrame {
  type: number;
  payload: Buffer;
}

/**
 * lodged's end of one lane of a real Python runtime (a fake lodged, named as such): frames
 * in arrive whole, in order; `log` is shared by all lanes of a worker, so a test can ask
 * which lane answered first ("1 END" before "0 END").
 */
export class FakeLodgedLane {
  frames: LaneFrame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  constructor(
    readonly index: number,
    readonly socket: Socket,
    private log: string[],
  ) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 8 && this.buf.length >= 8 + this.buf.readUInt32BE(4)) {
        const n = this.buf.readUInt32BE(4);
        const f = { type: this.buf[0], payload: Buffer.from(this.buf.subarray(8, 8 + n)) };
        this.buf = this.buf.subarray(8 + n);
        this.frames.push(f);
        this.log.push(`${index} ${frameName(f.type)}`);
        this.wake();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.log.push(`${index} closed`);
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Frames up to and including the first END or ERROR from `from` on; rejects if the lane closes first. */
  async answer(from = 0): Promise<LaneFrame[]> {
    for (;;) {
      const i = this.frames.findIndex((f, j) => j >= from && (f.type === FrameType.END || f.type === FrameType.ERROR));
      if (i >= 0) return this.frames.slice(from, i + 1);
      if (this.closed) throw new Error(`lane ${this.index} closed before END: ${this.frames.map((f) => frameName(f.type)).join(' ')}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Until a frame of this type has come (from `from` on). */
  async frame(type: number, from = 0): Promise<LaneFrame> {
    for (;;) {
      const f = this.frames.slice(from).find((x) => x.type === type);
      if (f) return f;
      if (this.closed) throw new Error(`lane ${this.index} closed before ${frameName(type)}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /**
   * A request: REQ (GET unless `extra` says otherwise, PATH_INFO, the usual pairs and
   * `extra`), then BODY_END unless `bodyEnd` is false (a tunnel, a body the test sends
   * itself). Returns the index its answer's frames start at.
   */
  get(path: string, extra: Array<[string, string]> = [], bodyEnd = true): number {
    const from = this.frames.length;
    const req = encodePairs([
      ...(extra.some(([k]) => k === 'REQUEST_METHOD') ? [] : [['REQUEST_METHOD', 'GET'] as [string, string]]),
      ['SCRIPT_NAME', ''],
      ['PATH_INFO', path],
      ['QUERY_STRING', ''],
      ['SERVER_NAME', 'localhost'],
      ['SERVER_PORT', '80'],
      ['SERVER_PROTOCOL', 'HTTP/1.1'],
      ['REMOTE_ADDR', '127.0.0.1'],
      ['REQUEST_URI', path],
      ...extra,
    ]);
    this.socket.write(Buffer.concat([encodeFrame(FrameType.REQ, req), ...(bodyEnd ? [BODY_END_FRAME] : [])]));
    return from;
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  /** lodged's end closed: the runtime sees end of file on this lane. */
  close(): void {
    this.socket.destroy();
  }
}

export interface RuntimeUnderTest {
  child: ChildProcess;
  lanes: FakeLodgedLane[];
  /** What all lanes sent, in the order it arrived: "0 READY", "1 HEAD", ... */
  log: string[];
  /** The exit code (null: a signal). */
  exited: Promise<number | null>;
  stderr: () => string;
}

/**
 * Starts `python3 -I runtime` through lodge-spawn as `user` with `sockets` socket pairs as
 * its lanes (fd 3, then LANE_FD_FIRST on), and sends `start` (pairs) as START on lane 0.
 */
export function startRuntime(runtime: string, user: TestUser, sockets: number, start: Array<[string, string]>): RuntimeUnderTest {
  const stdio: StdioOptions = ['ignore', 'ignore', 'pipe'];
  const mine: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < sockets; i++) {
    const [a, b] = socketPair();
    mine.push(a);
    theirs.push(b);
    stdio[i === 0 ? WORKER_FD : LANE_FD_FIRST + i - 1] = b;
  }
  for (let fd = 3; fd < stdio.length; fd++) stdio[fd] ??= 'ignore';
  const args = ['--uid', String(user.uid), '--gid', String(user.gid), '--', '/usr/bin/python3', '-I', runtime];
  let child: ChildProcess;
  try {
    child = spawn(SPAWN_HELPER, args, { cwd: '/', env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' }, detached: true, stdio });
  } finally {
    for (const fd of theirs) fs.closeSync(fd);
  }
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const log: string[] = [];
  const lanes = mine.map((fd, i) => new FakeLodgedLane(i, new Socket({ fd, readable: true, writable: true }), log));
  lanes[0].send(encodeFrame(FrameType.START, encodePairs(start)));
  return { child, lanes, log, exited, stderr: () => err };
}
