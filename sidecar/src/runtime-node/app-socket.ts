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
  /** A connection from the app's socket closed, its last frame written (the worker may be leaving). */
  closed(): void;
}

/**
 * The app's own listening socket (LISTEN_FD; PROTOCOL.md, "Straight to the app"), for a
 * Node worker: mod_lodge connects, the worker accepts, and the connection is a lane
 * (lane.ts) that carries requests one after another for as long as mod_lodge keeps it.
 *
 * The worker holds at most as many requests as it has lanes (LodgeConcurrency), lodged's
 * and these together. It accepts only while one is free, each new connection holding
 * one for the request it brings; the others wait in the kernel's listen queue for another
 * worker, or for this one to finish one. A kept connection holds nothing while idle: a
 * request that comes on one while every lane is busy is refused (the connection closed
 * unanswered, before ACCEPTED), and mod_lodge sends it again on a new connection.
 *
 * Each lane has its scoreboard slot, where the requests taken here are counted for
 * lodged (scoreboard/writer.ts); a request takes a free one for its time.
 */
export class AppSocket {
  private readonly native = workerNative();
  private readonly board: BoardWriter;
  private readonly slots: SlotWriter[] = [];
  /** The connection whose request each slot holds. */
  private readonly holders: Array<Lane | undefined>;
  private readonly slotOf = new Map<Lane, number>();
  /** Every connection in hand. */
  private readonly links = new Set<Lane>();
  /** Connections accepted whose first request has not come: each holds a lane for it. */
  private readonly fresh = new Set<Lane>();
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
    this.holders = new Array<Lane | undefined>(lanes).fill(undefined);
    const pid = Buffer.alloc(4);
    pid.writeUInt32BE(process.pid);
    // First of every request's answer: mod_lodge learns from it that a worker has the request.
    this.accepted = encodeFrame(FrameType.ACCEPTED, pid);
    this.watch = new native.FdWatch(LISTEN_FD, (status) => this.onReadable(status));
  }

  /** Requests from the app's socket in hand. */
  get open(): number {
    return this.slotOf.size;
  }

  /** The app is loaded: connections are taken from now on. */
  start(): void {
    for (const s of this.slots) s.setState(STATE.idle);
    this.resume();
  }

  /** Takes no more requests (the worker leaves once those in hand are answered). */
  stop(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.watch.close();
    this.watching = false;
    for (let i = 0; i < this.lanes; i++) if (!this.holders[i]) this.slots[i].setState(STATE.leaving);
    for (const lane of [...this.links]) lane.leave();
  }

  /** A request ended somewhere in the worker: a lane may be free again. */
  resume(): void {
    if (this.leaving || this.watching || !this.laneFree()) return;
    this.watching = true;
    this.watch.start(READABLE);
  }

  private laneFree(): boolean {
    return this.slotOf.size + this.fresh.size + this.host.lanesBusy() < this.lanes;
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
      while (this.laneFree()) {
        const fd = this.native.accept(LISTEN_FD);
        if (fd < 0) return; // another worker took it
        taken.push(this.take(fd));
      }
      // Every lane busy: the listen queue holds the rest until one is free.
      this.watching = false;
      this.watch.stop();
    } catch (err) {
      // Not the app's doing (EMFILE, say): the connections wait for another worker.
      log(`cannot accept on the app's socket: ${(err as Error).message}; no more requests are taken from it`);
      this.stop();
    } finally {
      this.openAll(taken);
    }
  }

  // Each request may run the app before open() returns: an app's throw goes on as an
  // uncaught exception, as from any event, and the other connections taken are still
  // read (else they would wait, unread, for mod_lodge's timeout).
  private openAll(taken: Lane[]): void {
    for (const lane of taken) {
      try {
        lane.open();
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  private take(fd: number): Lane {
    const host: LaneHost = {
      phase: () => 'serving',
      entry: () => this.host.entry(),
      start: () => undefined, // never: a connection from the app's socket takes no START (lane.ts limit)
      protocolError: (msg, lane) => {
        log(`a connection from Apache broke the protocol (${msg}); closed`);
        lane.drop();
      },
      admit: (lane) => this.admit(lane),
      began: (lane, head) => this.slots[this.slotOf.get(lane)!].begin(head.method, head.url),
      ended: (lane, status) => this.release(lane, status),
      hungUp: () => undefined,
      closed: (lane) => {
        this.links.delete(lane);
        this.fresh.delete(lane);
        this.release(lane, 0); // a request still held when its connection went
        this.resume();
        this.host.closed();
      },
    };
    const lane = new Lane(0, new RawLink(fd, this.native), host, this.accepted);
    this.links.add(lane);
    this.fresh.add(lane);
    return lane;
  }

  // A new connection's first request has its lane already; a kept one's needs a free one.
  private admit(lane: Lane): boolean {
    // lodged's word to leave is looked at here too: requests on kept connections never wake the listening socket.
    if (!this.leaving && this.board.toldToLeave()) this.stop();
    const fresh = this.fresh.delete(lane);
    if (this.leaving || (!fresh && !this.laneFree())) return false;
    const slot = this.holders.indexOf(undefined);
    if (slot < 0) return false;
    this.holders[slot] = lane;
    this.slotOf.set(lane, slot);
    return true;
  }

  private release(lane: Lane, status: number): void {
    const slot = this.slotOf.get(lane);
    if (slot === undefined) return;
    this.slotOf.delete(lane);
    this.holders[slot] = undefined;
    this.slots[slot].end(status);
    if (this.leaving) this.slots[slot].setState(STATE.leaving);
    // Not host.closed(): the answer may still be on its way out (lane.ts flushes it at
    // the end of the turn, or as the lane closes), and a leaving worker exits on closed().
    this.resume();
  }
}
