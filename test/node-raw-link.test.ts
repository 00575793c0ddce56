import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { socketPair } from '../sidecar/src/posix';
import { RawLink } from '../sidecar/src/runtime-node/raw-link';
import { WorkerAddon, workerNative } from '../sidecar/src/runtime-node/worker-native';

// A RawLink (raw-link.ts) on one end of a real unix socket pair, read and written through
// the lodge_worker addon, with a net.Socket as mod_lodge on the other end.

/** The real addon, counting the watches made: a request answered at once needs none. */
function countingNative(): { native: WorkerAddon; watches: () => number } {
  const real = workerNative();
  let made = 0;
  const native: WorkerAddon = Object.create(real);
  native.FdWatch = class extends real.FdWatch {
    constructor(fd: number, cb: (status: number, events: number) => void) {
      super(fd, cb);
      made++;
    }
  };
  return { native, watches: () => made };
}

function pair(native?: WorkerAddon): { link: RawLink; peer: net.Socket } {
  const [a, b] = socketPair();
  return { link: new RawLink(a, native), peer: new net.Socket({ fd: b, readable: true, writable: true }) };
}

const until = (emitter: NodeJS.EventEmitter, event: string) => new Promise<void>((resolve) => emitter.once(event, () => resolve()));

function collect(sock: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  sock.on('data', (c: Buffer) => parts.push(c));
  return new Promise((resolve) => sock.on('end', () => resolve(Buffer.concat(parts))));
}

test('a request already there is read within start(), answered and closed with no watch made', async () => {
  const { native, watches } = countingNative();
  const { link, peer } = pair(native);
  const answer = collect(peer);
  peer.write('REQ and BODY_END');
  await new Promise((r) => setTimeout(r, 20));
  const seen: string[] = [];
  link.on('data', (c: Buffer) => {
    seen.push(c.toString());
    link.cork();
    link.write(Buffer.from('HEAD '));
    link.write(Buffer.from('DATA END'));
    // As a lane closes (lane.ts close()): input paused, then the end.
    link.pause();
    link.end(() => link.destroy());
  });
  const closed = until(link, 'close');
  link.start();
  assert.deepEqual(seen, ['REQ and BODY_END'], 'the bytes came as data before start() returned');
  await closed;
  assert.equal((await answer).toString(), 'HEAD DATA END');
  assert.equal(watches(), 0, 'no watch was made for a request answered in its first turn');
});

test('bytes that come later are read through the watch, and the end of file is told', async () => {
  const { native, watches } = countingNative();
  const { link, peer } = pair(native);
  const parts: string[] = [];
  link.on('data', (c: Buffer) => parts.push(c.toString()));
  const ended = until(link, 'end');
  link.start();
  assert.deepEqual(parts, [], 'nothing was there yet');
  await new Promise((r) => setTimeout(r, 10));
  peer.write('first ');
  await new Promise((r) => setTimeout(r, 10));
  peer.end('second');
  await ended;
  assert.equal(parts.join(''), 'first second');
  assert.equal(watches(), 1, 'one watch, made once a turn passed with the request not in hand');
  link.destroy();
  await until(link, 'close');
});

test('a paused link reads nothing until resumed, and none of it is lost', async () => {
  const { link, peer } = pair();
  const parts: string[] = [];
  link.on('data', (c: Buffer) => parts.push(c.toString()));
  link.start();
  await new Promise((r) => setImmediate(r));
  link.pause();
  peer.write('held back');
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(parts, [], 'nothing read while paused');
  const got = new Promise<void>((resolve) => link.once('data', () => resolve()));
  link.resume();
  await got;
  assert.equal(parts.join(''), 'held back');
  link.destroy();
  peer.destroy();
});

test('a write past the peer\'s queue says wait, drains when it reads, and every byte arrives in order', async () => {
  const { link, peer } = pair();
  peer.pause();
  link.on('data', () => undefined);
  link.start();
  const body = crypto.randomBytes(4 * 1024 * 1024);
  let waited = false;
  let drained = 0;
  link.on('drain', () => drained++);
  for (let at = 0; at < body.length; at += 64 * 1024) {
    if (!link.write(body.subarray(at, at + 64 * 1024))) waited = true;
  }
  assert.ok(waited, 'write() said to wait for drain');
  const received = collect(peer);
  peer.resume();
  const closed = until(link, 'close');
  link.end(() => link.destroy());
  const got = await received;
  await closed;
  assert.ok(drained >= 1, 'drain came once the queue was out');
  assert.equal(got.length, body.length);
  assert.ok(got.equals(body), 'the bytes arrived whole and in order');
});

test('a write to a peer that is gone fails as a socket does: error, then close', async () => {
  const { link, peer } = pair();
  const events: string[] = [];
  link.on('data', () => undefined);
  link.on('error', (err: Error & { code?: string }) => events.push(`error ${err.code}`));
  link.on('close', () => events.push('close'));
  link.on('end', () => events.push('end'));
  link.start();
  peer.destroy();
  await until(link, 'end');
  link.write(Buffer.from('nobody reads this'));
  await until(link, 'close');
  assert.deepEqual(events, ['end', 'error EPIPE', 'close']);
  assert.equal(link.destroyed, true);
});
