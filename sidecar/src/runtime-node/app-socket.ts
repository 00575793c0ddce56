import * as fs from 'node:fs';
import { FrameType, encodeFrame } from '../protocol/frames';
import { BOARD_FD, LISTEN_FD } from '../protocol/constants';
import { BoardWriter, STATE, SlotWriter } from '../scoreboard/writer';
import { Lane, LaneHost } from './lane';
import { log } from './process-io';
import { RawLink } from './raw-link';
import { FdWatch, READABLE, workerNative } from './worker-native';

/** What the app's socket needs of the process around it (main.ts). */
export interface AppSocketHost {
  entry(): string;
  /** Requests lodged's lanes hold now: they share the worker's LodgeConcurrency with these. */
  lanesBusy(): number;
  /** A connection from the app's socket closed (the worker may be leaving). */
  closed(): void;
}

/**
 * The app's own listening socket (LISTEN_FD; PROTOCOL.md, "Straight to the app"), for a
 * Node worker: mod_lodge connects, the worker accepts, and the connection is a lane of
 * one request (lane.ts). The worker accepts only while it holds fewer requests than its
 * lanes (LodgeConcurrency), lodged's and these together: the others wait in the kernel's
 * listen queue for another worker, or for this one to finish one.
 *
 * Each seat (one per lane) has its scoreboard slot, where the requests taken here are
 * counted for lodged (scoreboard/writer.ts).
 */
export class AppSocket {
  private readonly native = workerNative();
  private readonly board: BoardWriter;
  private readonly slots: SlotWriter[] = [];
  private readonly seats: Array<Lane | undefined>;
  private readonly watch: FdWatch;
  private readonly accepted: Buffer;
  private watching = false;
  private leaving = false;

  /** `first`: START's `slot`, the first of `lanes` slots of this worker. */
  constructor(
    private readonly lanes: number,
    first: number,
    private readonly host: AppSocketHost,
  ) {
    const { native } = this;
    // A program the app runs gets neither the socket nor the board.
    native.closeOnExec(LISTEN_FD);
    native.closeOnExec(BOARD_FD);
    this.board = new BoardWriter(native.mapShared(BOARD_FD, fs.fstatSync(BOARD_FD).size), first, lanes);
    for (let i = 0; i < lanes; i++) {
      const slot = this.board.slot(i);
      slot.claim(process.pid, 0);
      this.slots.push(slot);
    }
    this.seats = new Array<Lane | undefined>(lanes).fill(undefined);
    const pid = Buffer.alloc(4);
    pid.writeUInt32BE(process.pid);
    // First on every connection: mod_lodge learns from it that a worker has the request.
    this.accepted = encodeFrame(FrameType.ACCEPTED, pid);
    this.watch = new native.FdWatch(LISTEN_FD, (status) => this.onReadable(status));
  }

  /** Connections from the app's socket in hand. */
  get open(): number {
    let n = 0;
    for (const s of this.seats) if (s) n++;
    return n;
  }

  /** The app is loaded: connections are taken from now on. */
  start(): void {
    for (const s of this.slots) s.setState(STATE.idle);
    this.resume();
  }

  /** Takes no more connections (the worker leaves once those in hand are answered). */
  stop(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.watch.close();
    this.watching = false;
    for (let i = 0; i < this.lanes; i++) if (!this.seats[i]) this.slots[i].setState(STATE.leaving);
  }

  /** A request ended somewhere in the worker: a seat may be free again. */
  resume(): void {
    if (this.leaving || this.watching || this.freeSeat() < 0) return;
    this.watching = true;
    this.watch.start(READABLE);
  }

  private freeSeat(): number {
    if (this.open + this.host.lanesBusy() >= this.lanes) return -1;
    return this.seats.indexOf(undefined);
  }

  private onReadable(status: number): void {
    const taken: Lane[] = [];
    try {
      if (status < 0) {
        log(`the app's socket cannot be watched (libuv status ${status}); no more requests are taken from it`);
        return this.stop();
      }
      // lodged's word on the board: the worker is to leave (its lanes' hang-up follows).
      if (this.board.toldToLeave()) return this.stop();
      for (let seat = this.freeSeat(); seat >= 0; seat = this.freeSeat()) {
        const fd = this.native.accept(LISTEN_FD);
        if (fd < 0) return; // another worker took it
        taken.push(this.take(seat, fd));
      }
      // Every lane busy: the listen queue holds the rest until one is free.
      this.watching = false;
      this.watch.stop();
    } catch (err) {
      // Not the app's doing (EMFILE, say): the connections wait for another worker.
      log(`cannot accept on the app's socket: ${(err as Error).message}; no more requests are taken from it`);
      this.stop();
    } finally {
      this.greetAll(taken);
    }
  }

  // Each request may run the app before greet() returns: an app's throw goes on as an
  // uncaught exception, as from any event, and the other connections taken are still
  // greeted (else they would wait, unread, for mod_lodge's timeout).
  private greetAll(taken: Lane[]): void {
    for (const lane of taken) {
      try {
        lane.greet(this.accepted);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  private take(seat: number, fd: number): Lane {
    const slot = this.slots[seat];
    const host: LaneHost = {
      phase: () => 'serving',
      entry: () => this.host.entry(),
      start: () => undefined, // never: a lane of one request takes no START (lane.ts limit)
      protocolError: (msg, lane) => {
        log(`a connection from Apache broke the protocol (${msg}); closed`);
        lane.drop();
      },
      began: (_lane, head) => slot.begin(head.method, head.url),
      ended: (_lane, status) => slot.end(status),
      hungUp: () => undefined,
      closed: () => {
        this.seats[seat] = undefined;
        if (this.leaving) slot.setState(STATE.leaving);
        this.resume();
        this.host.closed();
      },
    };
    const lane = new Lane(seat, new RawLink(fd, this.native), host, true);
    this.seats[seat] = lane;
    return lane;
  }
}
