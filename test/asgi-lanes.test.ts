import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ABORT_FRAME, BODY_END_FRAME, FrameType, encodeFrame } from '../sidecar/src/protocol/frames';
import { WORKER_EXIT_PROTOCOL } from '../sidecar/src/protocol/constants';
import { ASGI_RUNTIME, WSGI_RUNTIME } from '../sidecar/src/pool/worker-process';
import { RuntimeUnderTest, startRuntime } from './helpers/lane-runtime';
import { TestUser, createUser, removeUser } from './helpers/users';

// The ASGI runtime with several lanes (PROTOCOL.md, "Lanes"), driven by the test playing
// lodged on real socket pairs: each lane serves its own request at once on the worker's
// one event loop; ABORT or the end of one lane touches that lane only; the worker leaves
// (lifespan shutdown first) once every lane is closed.

const MAIN = `
import asyncio, os

HERE = os.path.dirname(os.path.abspath(__file__))

def note(what):
    with open(os.path.join(HERE, "events"), "a") as f:
        f.write(what + "\\n")

async def respond(send, body):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                note("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo " + m["text"]})
    p = scope["path"]
    if p == "/slow":
        await asyncio.sleep(0.5)
        await respond(send, b"slow")
    elif p == "/fast":
        await respond(send, b"fast %d" % os.getpid())
    elif p == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"piece %d;" % i, "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"end"})
    elif p == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        piece = b"x" * 262144
        for i in range(32):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif p == "/upload":
        size, more = 0, True
        while more:
            m = await receive()
            size += len(m.get("body", b""))
            more = m.get("more_body", False)
        await respond(send, b"got %d" % size)
    elif p == "/wait-disconnect":
        while (await receive())["type"] != "http.disconnect":
            pass
        note("disconnect")
    elif p == "/sleep":
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            note("cancelled")
            raise
`;

let user: TestUser;
let dir: string;
const running: RuntimeUnderTest[] = [];

before(() => {
  user = createUser();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-lanes-'));
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'main.py'), MAIN);
  fs.chownSync(dir, user.uid, user.gid);
  fs.chownSync(path.join(dir, 'main.py'), user.uid, user.gid);
});

after(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) process.kill(r.child.pid!, 'SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  if (user) await removeUser(user);
  fs.rmSync(dir, { recursive: true, force: true });
});

const events = (): string[] => (fs.existsSync(path.join(dir, 'events')) ? fs.readFileSync(path.join(dir, 'events'), 'utf8').split('\n').filter(Boolean) : []);

const START = (extra: Array<[string, string]>): Array<[string, string]> => [['root', dir], ['entry', 'main.py'], ['log', 'lodge.log'], ...extra];

/** A worker with `lanes` lanes, past READY. */
async function worker(lanes: number, pairs: Array<[string, string]> = [['lanes', String(lanes)]]): Promise<RuntimeUnderTest> {
  fs.rmSync(path.join(dir, 'events'), { force: true });
  const r = startRuntime(ASGI_RUNTIME, user, lanes, START(pairs));
  running.push(r);
  const ready = await Promise.race([r.lanes[0].frame(FrameType.READY), r.exited.then((c) => { throw new Error(`exited ${c}: ${r.stderr()}`); })]);
  assert.ok(ready);
  return r;
}

const body = (frames: { type: number; payload: Buffer }[]): string =>
  Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)).toString();

test('with three lanes, a request sleeping on lane 0 does not hold up one on lane 1', async () => {
  const r = await worker(3);
  const [l0, l1] = r.lanes;
  l0.get('/slow');
  // Lane 0's request is in the app (asleep) before lane 1's arrives.
  await new Promise((res) => setTimeout(res, 100));
  l1.get('/fast');
  const [slow, fast] = await Promise.all([l0.answer(), l1.answer()]);
  assert.match(body(fast), /^fast \d+$/);
  assert.equal(body(slow), 'slow');
  assert.ok(r.log.indexOf('1 END') < r.log.indexOf('0 END'), `lane 1 answered first: ${r.log.join(', ')}`);
  // Nothing before READY, and READY on lane 0 only.
  assert.equal(r.log.filter((e) => e.endsWith('READY')).join(), '0 READY');
});

test('a lane whose reader is slow (its socket full) leaves the other lanes answering', async () => {
  const r = await worker(2);
  const [l0, l1] = r.lanes;
  l0.socket.pause();
  const from0 = l0.get('/big');
  await new Promise((res) => setTimeout(res, 200));
  const fast = await l1.answer(l1.get('/fast'));
  assert.match(body(fast), /^fast/);
  assert.ok(!r.log.includes('0 END'), 'lane 0 is still held by its reader');
  l0.socket.resume();
  assert.equal(body(await l0.answer(from0)).length, 32 * 262144);
});

test('an upload whose BODY frame has come only in part on lane 0 leaves lane 1 answering', async () => {
  const r = await worker(2);
  const [l0, l1] = r.lanes;
  const from0 = l0.get('/upload', [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '100000']], false);
  const piece = encodeFrame(FrameType.BODY, Buffer.alloc(100000, 'u'));
  l0.send(piece.subarray(0, 50000));
  await new Promise((res) => setTimeout(res, 100));
  assert.match(body(await l1.answer(l1.get('/fast'))), /^fast/);
  assert.ok(!r.log.includes('0 END'));
  l0.send(Buffer.concat([piece.subarray(50000), BODY_END_FRAME]));
  assert.equal(body(await l0.answer(from0)), 'got 100000');
});

test('ABORT in the middle of an upload on lane 0: END there, nothing else; lane 1 unaffected', async () => {
  const r = await worker(2);
  const [l0, l1] = r.lanes;
  const from0 = l0.get('/upload', [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '100000']], false);
  l0.send(encodeFrame(FrameType.BODY, Buffer.alloc(30000, 'u')));
  l0.send(ABORT_FRAME);
  assert.deepEqual((await l0.answer(from0)).map((f) => f.type), [FrameType.END]);
  assert.match(body(await l1.answer(l1.get('/fast'))), /^fast/);
  assert.match(body(await l0.answer(l0.get('/fast'))), /^fast/);
});

test('ABORT on one lane stops that request only: the app hears http.disconnect, or is cancelled; the stream on the next lane completes', async () => {
  const r = await worker(3);
  const [l0, l1, l2] = r.lanes;
  const from0 = l0.get('/wait-disconnect');
  const from2 = l2.get('/sleep');
  const from1 = l1.get('/stream');
  await l1.frame(FrameType.DATA, from1);
  l0.send(ABORT_FRAME);
  l2.send(ABORT_FRAME);
  const [a0, a2] = await Promise.all([l0.answer(from0), l2.answer(from2)]);
  assert.deepEqual(a0.map((f) => f.type), [FrameType.END], 'lane 0: END, nothing else');
  assert.deepEqual(a2.map((f) => f.type), [FrameType.END], 'lane 2: END, nothing else');
  const streamed = await l1.answer(from1);
  assert.equal(body(streamed), 'piece 0;piece 1;piece 2;piece 3;piece 4;end');
  assert.ok(events().includes('disconnect'), `the app saw http.disconnect: ${events()}`);
  assert.ok(events().includes('cancelled'), `the sleeping app was cancelled: ${events()}`);
  // The aborted lanes serve again.
  assert.match(body(await l0.answer(l0.get('/fast'))), /^fast/);
  assert.match(body(await l2.answer(l2.get('/fast'))), /^fast/);
});

test('end of file on an idle lane closes that lane; the others go on serving', async () => {
  const r = await worker(3);
  const [l0, l1, l2] = r.lanes;
  l1.close();
  await new Promise((res) => setTimeout(res, 200));
  assert.match(body(await l0.answer(l0.get('/fast'))), /^fast/);
  assert.match(body(await l2.answer(l2.get('/fast'))), /^fast/);
  assert.equal(r.child.exitCode, null, 'the worker still runs');
});

test('lanes 0 and 2 closing while lane 1 is busy: lane 1 still answers; once every lane is closed the worker exits 0 after the lifespan shutdown', async () => {
  const r = await worker(3);
  const [l0, l1, l2] = r.lanes;
  const from1 = l1.get('/slow');
  l0.close();
  l2.close();
  // Lane 1 still answers its request after lane 0 (fd 3) closed.
  assert.equal(body(await l1.answer(from1)), 'slow');
  assert.equal(r.child.exitCode, null, 'one lane open: the worker stays');
  l1.close();
  assert.equal(await r.exited, 0);
  assert.deepEqual(events(), ['shutdown']);
});

/** A client's WebSocket frame (masked, as RFC 6455 has clients send). */
const clientFrame = (opcode: number, payload: Buffer): Buffer => {
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
};

test('a WebSocket on lane 1 is served while lane 0 answers requests', async () => {
  const r = await worker(2);
  const [l0, l1] = r.lanes;
  const from1 = l1.get('/ws', [
    ['HTTP_UPGRADE', 'websocket'],
    ['HTTP_CONNECTION', 'Upgrade'],
    ['HTTP_SEC_WEBSOCKET_KEY', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['HTTP_SEC_WEBSOCKET_VERSION', '13'],
  ], false);
  const head = await l1.frame(FrameType.HEAD, from1);
  assert.equal(head.payload.readUInt16BE(0), 101);
  l1.send(encodeFrame(FrameType.BODY, clientFrame(0x1, Buffer.from('one'))));
  const echo = await l1.frame(FrameType.DATA, from1);
  assert.equal(echo.payload.subarray(2).toString(), 'echo one');
  // The tunnel is open; lane 0 answers meanwhile.
  assert.match(body(await l0.answer(l0.get('/fast'))), /^fast/);
  l1.send(encodeFrame(FrameType.BODY, clientFrame(0x8, Buffer.from([0x03, 0xe8]))));
  const end = await l1.answer(from1);
  assert.equal(end.at(-1)!.type, FrameType.END);
  l1.send(BODY_END_FRAME);
  assert.match(body(await l1.answer(l1.get('/fast'))), /^fast/, 'lane 1 serves again after its tunnel');
});

test('SIGTERM: the idle lane closes at once, the busy one answers first; then the worker exits 0 after the lifespan shutdown', async () => {
  const r = await worker(2);
  const [l0, l1] = r.lanes;
  const from0 = l0.get('/slow');
  await new Promise((res) => setTimeout(res, 100));
  process.kill(r.child.pid!, 'SIGTERM');
  assert.equal(body(await l0.answer(from0)), 'slow');
  assert.ok(r.log.indexOf('1 closed') >= 0 && r.log.indexOf('1 closed') < r.log.indexOf('0 END'), `lane 1 closed before lane 0 answered: ${r.log.join(', ')}`);
  assert.equal(await r.exited, 0);
  assert.deepEqual(events(), ['shutdown']);
});

for (const bad of ['0', '65', 'abc', '']) {
  test(`START lanes=${JSON.stringify(bad)} is a protocol error: exit 2`, async () => {
    const r = startRuntime(ASGI_RUNTIME, user, 1, START([['lanes', bad]]));
    running.push(r);
    assert.equal(await r.exited, WORKER_EXIT_PROTOCOL);
    assert.ok(!r.log.includes('0 READY'));
  });
}

test('START lanes=3 with no socket at the lanes\' fds is a protocol error: exit 2', async () => {
  const r = startRuntime(ASGI_RUNTIME, user, 1, START([['lanes', '3']]));
  running.push(r);
  assert.equal(await r.exited, WORKER_EXIT_PROTOCOL);
});

test('the WSGI runtime takes lanes=1 and refuses more lanes: exit 2', async () => {
  fs.writeFileSync(path.join(dir, 'wsgi.py'), 'def application(e, sr):\n    sr("200 OK", [])\n    return [b"wsgi"]\n');
  fs.chownSync(path.join(dir, 'wsgi.py'), user.uid, user.gid);
  const two = startRuntime(WSGI_RUNTIME, user, 2, [['root', dir], ['entry', 'wsgi.py'], ['log', 'lodge.log'], ['lanes', '2']]);
  running.push(two);
  assert.equal(await two.exited, WORKER_EXIT_PROTOCOL);
  const one = startRuntime(WSGI_RUNTIME, user, 1, [['root', dir], ['entry', 'wsgi.py'], ['log', 'lodge.log'], ['lanes', '1']]);
  running.push(one);
  await one.lanes[0].frame(FrameType.READY);
  assert.equal(body(await one.lanes[0].answer(one.lanes[0].get('/'))), 'wsgi');
  one.lanes[0].close();
  assert.equal(await one.exited, 0);
});

test('no lanes pair: one lane on fd 3, as before; its end ends the worker after the lifespan shutdown', async () => {
  const r = await worker(1, []);
  const [l0] = r.lanes;
  assert.match(body(await l0.answer(l0.get('/fast'))), /^fast/);
  assert.equal(body(await l0.answer(l0.get('/stream'))), 'piece 0;piece 1;piece 2;piece 3;piece 4;end');
  l0.close();
  assert.equal(await r.exited, 0);
  assert.deepEqual(events(), ['shutdown']);
});
