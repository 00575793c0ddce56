import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

// An http server is handed each request as Node's own request and response objects
// (handed-exchange.ts): it gets no connection at all, so what would close one (`Connection:
// close`, an answer given before the body was read, the server's own keep-alive timer)
// costs the next request nothing. A server that is no http one (net.createServer) is
// written to on an in-process connection, kept from one request to the next as a
// reverse proxy keeps one to its backend. One worker per app here, so that every request
// meets the same worker.

// /n: how many connections the server has had, and the client's port as the socket says it.
const COUNTING_APP = `
const http = require('node:http');
let conns = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/close') res.setHeader('Connection', 'close');
  if (req.url === '/early') return res.end('early ' + conns);
  if (req.url === '/body') {
    let n = 0;
    req.on('data', (c) => (n += c.length));
    return req.on('end', () => res.end('body ' + n + ' ' + conns));
  }
  res.end(conns + ' ' + req.socket.remotePort);
});
server.on('connection', () => conns++);
server.listen(3000);
`;

// The server closes an idle connection soon: 50 ms, to which Node adds a second.
const SHORT_IDLE_APP = `
const http = require('node:http');
let conns = 0;
const server = http.createServer((req, res) => res.end(String(conns)));
server.on('connection', () => conns++);
server.keepAliveTimeout = 50;
server.listen(3000);
`;

// Responses the worker's parser must take as Node's client would: a head written in
// pieces, 103 Early Hints before the answer, HEAD's Content-Length with no body.
const PIECES_APP = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  if (req.url === '/hints') {
    res.writeEarlyHints({ link: '</a.css>; rel=preload' });
    return setImmediate(() => res.end('after hints'));
  }
  if (req.method === 'HEAD') return res.writeHead(200, { 'Content-Length': '12345' }).end();
  res.end('plain');
});
server.listen(3000);
`;

const SPLIT_APP = `
require('node:net').createServer((sock) => {
  sock.once('data', () => {
    sock.write('HTTP/1.1 200 OK\\r\\nX-First: 1\\r\\nX-Sec');
    setTimeout(() => sock.end('ond: 2\\r\\nContent-Length: 6\\r\\n\\r\\npieces'), 20);
  });
}).listen(4000);
`;

// A raw net server that answers HTTP/1.1 itself and keeps the connection: how many it has had.
const NET_COUNTING_APP = `
let conns = 0;
require('node:net').createServer((sock) => {
  const n = ++conns;
  sock.on('data', () => sock.write('HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\nconn ' + n));
}).listen(4000);
`;

const ONE = 'LodgeApp node server.js\nLodgeProcesses 1\n';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ kept: { '.htaccess': ONE, 'server.js': COUNTING_APP }, idle: { '.htaccess': ONE, 'server.js': SHORT_IDLE_APP }, pieces: { '.htaccess': ONE, 'server.js': PIECES_APP }, split: { '.htaccess': ONE, 'server.js': SPLIT_APP }, counted: { '.htaccess': ONE, 'server.js': NET_COUNTING_APP } }, {}, apache);
  });
  after(async () => site?.stop());

  const conns = async (p = '/n') => {
    const r = await site.get('kept', p);
    assert.equal(r.status, 200, r.text);
    return r.text;
  };

  test("an http server is handed requests without a connection, each with its own client's port", async () => {
    const [first, port1] = (await conns()).split(' ');
    const [second, port2] = (await conns()).split(' ');
    assert.equal(first, '0', "the server had no 'connection' event");
    assert.equal(second, '0');
    assert.notEqual(port2, port1, "each request's socket says its own client's port (each came on a connection of its own to Apache)");
  });

  test('a request body read to the end', async () => {
    const r = await site.get('kept', '/body', { body: Buffer.alloc(256 * 1024, 97) });
    assert.equal(r.text, `body ${256 * 1024} 0`);
  });

  test("`Connection: close` from the app costs the next request nothing", async () => {
    const r = await site.get('kept', '/close');
    assert.equal(r.status, 200, r.text);
    assert.equal((await conns()).split(' ')[0], '0');
  });

  test('an app that answers before reading the body: the next request is whole', async () => {
    const r = await site.get('kept', '/early', { body: Buffer.alloc(1024 * 1024, 98) });
    assert.equal(r.text, 'early 0');
    const again = await site.get('kept', '/body', { body: Buffer.alloc(1000, 97) });
    assert.equal(again.text, 'body 1000 0', 'the rest of that body was not taken for a request');
  });

  test("the server's own keep-alive timer costs no request", async () => {
    const first = await site.get('idle', '/');
    assert.equal(first.status, 200, first.text);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await site.get('idle', '/');
    assert.equal(r.status, 200, r.text);
  });

  test('a net server: requests one after another go on one in-process connection', async () => {
    const a = await site.get('counted', '/');
    const b = await site.get('counted', '/');
    assert.equal(a.text, 'conn 1');
    assert.equal(b.text, 'conn 1', 'the second request came on the same connection');
  });

  test('a response head written in pieces is read whole', async () => {
    const r = await site.get('split', '/');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-first'], '1');
    assert.equal(r.headers['x-second'], '2');
    assert.equal(r.text, 'pieces');
  });

  test('103 Early Hints before the answer: the client gets the answer', async () => {
    const r = await site.get('pieces', '/hints');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'after hints');
  });

  test("HEAD: the app's Content-Length with no body, and the next request is whole", async () => {
    const h = await site.get('pieces', '/', { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], '12345');
    assert.equal(h.body.length, 0);
    assert.equal((await site.get('pieces', '/')).text, 'plain');
  });
});
