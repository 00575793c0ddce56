import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { AppConnection } from '../sidecar/src/runtime-node/app-connection';
import { Exchange, FrameOut } from '../sidecar/src/runtime-node/exchange';
import { requestHead } from '../sidecar/src/runtime-node/request-head';

// The Node worker's exchange in process, with a real http server and FakeFrameOut in
// lodged's place (frames counted, never full): no Apache, no root.

const fakeFrameOut = (): FrameOut & { frames: number } => {
  const out = { frames: 0, send: () => ((out.frames += 1), true), onDrain() {}, pauseInput() {}, resumeInput() {} };
  return out;
};

const GET: Array<[string, string]> = [
  ['REQUEST_METHOD', 'GET'],
  ['REQUEST_URI', '/x'],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['HTTP_HOST', 't.example'],
  ['REMOTE_ADDR', '192.0.2.1'],
];

test("a GET answered before its BODY_END frame came leaves the connection fit for the next request", async () => {
  let conns = 0;
  const server = http.createServer((_req, res) => res.end('ok'));
  server.on('connection', () => conns++);
  const connection = new AppConnection();
  const out = fakeFrameOut();
  for (let i = 0; i < 3; i++) {
    let ex: Exchange | undefined;
    await new Promise<void>((resolve) => {
      ex = new Exchange(requestHead(GET), server, connection, out, () => resolve());
    });
    ex!.bodyEnd(); // BODY_END after the answer (in a later read from lodged): nothing left to do
  }
  assert.equal(out.frames, 9, 'HEAD, DATA and END for each');
  assert.equal(conns, 1, 'the three requests went on one connection');
});
