import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

// The Node worker keeps its in-process connection to the app's server from one request
// to the next (as a reverse proxy keeps one to its backend), and makes a new one only
// when the server closed it: `Connection: close`, an answer given before the body was
// read, the server's own keep-alive timer. One worker per app here, so that every
// request meets the same connection.

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

const ONE = 'LodgeApp node server.js\nLodgeProcesses 1\n';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ kept: { '.htaccess': ONE, 'server.js': COUNTING_APP }, idle: { '.htaccess': ONE, 'server.js': SHORT_IDLE_APP }, pieces: { '.htaccess': ONE, 'server.js': PIECES_APP }, split: { '.htaccess': ONE, 'server.js': SPLIT_APP } }, {}, apache);
  });
  after(async () => site?.stop());

  const conns = async (p = '/n') => {
    const r = await site.get('kept', p);
    assert.equal(r.status, 200, r.text);
    return r.text;
  };

  test("requests one after another go on one connection to the app's server, each with its own client's port", async () => {
    const [first, port1] = (await conns()).split(' ');
    const [second, port2] = (await conns()).split(' ');
    const [third] = (await conns()).split(' ');
    assert.equal(second, first, 'the second request came on the same connection');
    assert.equal(third, first, 'the third too');
    assert.notEqual(port2, port1, "each request's socket says its own client's port (each came on a connection of its own to Apache)");
  });

  test('a request body read to the end leaves the connection open for the next request', async () => {
    const before = Number((await conns()).split(' ')[0]);
    const r = await site.get('kept', '/body', { body: Buffer.alloc(256 * 1024, 97) });
    assert.equal(r.text, `body ${256 * 1024} ${before}`);
    assert.equal(Number((await conns()).split(' ')[0]), before, 'no new connection');
  });

  test("after `Connection: close` from the app the next request gets a new connection", async () => {
    const before = Number((await conns()).split(' ')[0]);
    await conns('/close');
    assert.equal(Number((await conns()).split(' ')[0]), before + 1);
  });

  test('an app that answers before reading the body: the next request is whole, on a new connection', async () => {
    const before = Number((await conns()).split(' ')[0]);
    const r = await site.get('kept', '/early', { body: Buffer.alloc(1024 * 1024, 98) });
    assert.equal(r.text, `early ${before}`);
    const [after] = (await conns()).split(' ');
    assert.equal(Number(after), before + 1, 'the rest of that body was not taken for a request');
  });

  test("a connection the server's keep-alive timer closed is replaced, with no failed request", async () => {
    const first = Number((await site.get('idle', '/')).text);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await site.get('idle', '/');
    assert.equal(r.status, 200, r.text);
    assert.ok(Number(r.text) > first, `a new connection (${r.text} after ${first})`);
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
