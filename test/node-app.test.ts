import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { statusSnapshot } from '../sidecar/src/status/schema';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { tenantModules } from './helpers/node-modules';

// Unmodified Node apps as tenants (`LodgeApp node FILE`): an Express app with its
// packages in its own node_modules, an ES-module app, and apps that fail to start.
// Each listens on a port of its own choosing; none opens it.

const CLI = path.join(__dirname, '..', 'sidecar', 'src', 'cli', 'main.js');

const EXPRESS_APP = `
const crypto = require('node:crypto');
const fs = require('node:fs');
const express = require('express');
const app = express();
app.get('/hello/:name', (req, res) => {
  res.json({ hello: req.params.name, q: req.query, url: req.originalUrl, method: req.method,
    remote: req.socket.remoteAddress, remotePort: req.socket.remotePort,
    xff: req.get('x-forwarded-for'), proto: req.get('x-forwarded-proto'), host: req.get('host'),
    agent: req.get('user-agent'), main: require.main === module, greeting: process.env.GREETING });
});
app.post('/json', express.json(), (req, res) => res.status(201).json({ got: req.body, type: req.get('content-type') }));
app.post('/upload', (req, res) => {
  const h = crypto.createHash('sha256');
  let n = 0;
  req.on('data', (c) => { n += c.length; h.update(c); });
  req.on('end', () => res.json({ n, sha256: h.digest('hex'), chunked: req.get('transfer-encoding') ?? null }));
});
// The first line goes out at once; the rest when the test has read it (it makes tmp/go).
app.get('/stream', (req, res) => {
  res.type('text/plain');
  res.write('first line\\n');
  const t = setInterval(() => {
    if (!fs.existsSync('tmp/go')) return;
    clearInterval(t);
    res.end('last line\\n');
  }, 20);
});
app.post('/early', (req, res) => res.status(413).send('no thanks')); // answers before reading the body
app.get('/reject', () => { Promise.reject(new Error('nobody handles this 4321')); });
app.get('/pid', (req, res) => res.send(String(process.pid)));
const port = process.env.PORT || 3000;
app.listen(port, () => console.log('express app listening on', port));
`;

const FASTIFY_APP = `
const fastify = require('fastify')({ logger: false });
fastify.get('/items/:id', async (req) => ({ id: req.params.id, ip: req.ip, host: req.hostname }));
fastify.post('/items', async (req, reply) => reply.code(201).send({ created: req.body }));
fastify.listen({ port: Number(process.env.PORT) || 3000 }, (err, address) => {
  if (err) throw err;
  console.log('fastify at', address);
});
`;

const ESM_APP = {
  'package.json': '{ "type": "module" }\n',
  'server.js': `
import http from 'node:http';
import { greeting } from './lib/greet.js';
const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(greeting(req.url) + (typeof require === 'undefined' ? ' (esm)' : ' (cjs)'));
});
server.listen(8080);
server.listen(8081); // a second listen() is no error
`,
  'lib/greet.js': 'export const greeting = (u) => `hello ${u}`;\n',
};

const MJS_APP = `
import { createServer } from 'node:http';
const top = await Promise.resolve('top-level await');
createServer((req, res) => res.end(top)).listen(0);
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        ex: { '.htaccess': 'LodgeApp node app.js\nLodgeProcesses 2\nLodgeEnv GREETING "hello café"\n', 'app.js': EXPRESS_APP, 'tmp/.keep': '', ...tenantModules(['express']) },
        fy: { '.htaccess': 'LodgeApp node app.js\n', 'app.js': FASTIFY_APP, ...tenantModules(['fastify']) },
        esm: { '.htaccess': 'LodgeApp node server.js\n', ...ESM_APP },
        mjs: { '.htaccess': 'LodgeApp node main.mjs\n', 'main.mjs': MJS_APP },
        throws: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': "const x = 1;\nthrow new TypeError('broken at start 9876');\n" },
        nolisten: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': "require('node:http').createServer(() => {});\nconsole.log('made a server, never listened');\n" },
      },
      undefined,
      apache,
    );
  });
  after(async () => site?.stop());

  test('an Express app routes, sees the real method, URL, headers and client, and runs as the entry module', async () => {
    const agent = new http.Agent({ keepAlive: false });
    let clientPort = 0;
    agent.on('free', () => undefined);
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: site.sb.port, path: '/hello/w%C3%B6rld?a=1&b=two', headers: { Host: `ex.localhost:${site.sb.port}`, 'User-Agent': 'lodge-test/1', 'X-Forwarded-For': '203.0.113.9' }, agent });
      req.on('socket', (s) => s.on('connect', () => (clientPort = s.localPort ?? 0)));
      req.on('response', (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 200, r.body);
    const j = JSON.parse(r.body);
    assert.equal(j.hello, 'wörld');
    assert.deepEqual(j.q, { a: '1', b: 'two' });
    assert.equal(j.url, '/hello/w%C3%B6rld?a=1&b=two', 'the URL as the client sent it');
    assert.equal(j.method, 'GET');
    assert.equal(j.agent, 'lodge-test/1');
    assert.equal(j.host, `ex.localhost:${site.sb.port}`);
    assert.equal(j.remote, '127.0.0.1');
    assert.equal(j.remotePort, clientPort, "the socket's remote port is the client's own");
    assert.equal(j.xff, '203.0.113.9, 127.0.0.1', 'X-Forwarded-For: the client\'s, then the address Apache saw');
    assert.equal(j.proto, 'http');
    assert.equal(j.main, true, 'require.main is the app');
    assert.equal(j.greeting, 'hello café', 'LodgeEnv in process.env');
    await eventually(() => /express app listening on 3000/.test(site.tenantLog('ex')), "the app's console.log in the tenant's log");
  });

  test('a JSON body is parsed by Express; a 404 is the app\'s own', async () => {
    const r = await site.get('ex', '/json', { method: 'POST', body: JSON.stringify({ a: [1, 2], s: 'ü' }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(JSON.parse(r.text), { got: { a: [1, 2], s: 'ü' }, type: 'application/json' });
    const missing = await site.get('ex', '/nothing-here');
    assert.equal(missing.status, 404);
    assert.match(missing.text, /Cannot GET \/nothing-here/, "Express's own 404 page");
  });

  test('a 10 MiB upload reaches the app whole, with Content-Length and chunked', async () => {
    const body = crypto.randomBytes(10 * 1024 * 1024);
    const sha = crypto.createHash('sha256').update(body).digest('hex');
    const r = await site.get('ex', '/upload', { body, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 60_000 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.text), { n: body.length, sha256: sha, chunked: null });
    const c = await site.get('ex', '/upload', { body, chunked: 100_003, timeoutMs: 60_000 });
    assert.equal(c.status, 200, c.text);
    assert.deepEqual(JSON.parse(c.text), { n: body.length, sha256: sha, chunked: 'chunked' });
  });

  test('an answer before the body was read: the client gets it, and the worker serves on', async () => {
    const pid = (await site.get('ex', '/pid')).text;
    const r = await site.get('ex', '/early', { body: crypto.randomBytes(10 * 1024 * 1024), timeoutMs: 60_000 });
    assert.equal(r.status, 413);
    assert.equal(r.text, 'no thanks');
    const after = await site.get('ex', '/hello/x');
    assert.equal(after.status, 200, after.text);
    assert.ok(!site.tenantLog('ex').includes(`worker ${pid} stopped`), 'the worker was not stopped');
  });

  test('a streamed response reaches the client as it is written', async () => {
    const go = path.join(site.root, 'ex', 'tmp', 'go');
    fs.rmSync(go, { force: true });
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: site.sb.port, path: '/stream', headers: { Host: `ex.localhost:${site.sb.port}` }, agent: false }, (res) => {
        let got = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          // The app holds the rest until this file exists: the first line came alone.
          if (!got) fs.writeFileSync(go, '');
          got += c;
        });
        res.on('end', () => resolve(got));
      });
      req.setTimeout(30_000, () => req.destroy(new Error('the first line never came on its own')));
      req.on('error', reject);
    });
    assert.equal(text, 'first line\nlast line\n');
  });

  test('an unhandled rejection in a handler is a 502, the tenant log names it, and the next request works', async () => {
    const r = await site.get('ex', '/reject');
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.text, /4321/, 'visitors do not see the error');
    await eventually(() => /unhandled promise rejection during a request:\nError: nobody handles this 4321/.test(site.tenantLog('ex')), 'the stack in the tenant log');
    await eventually(() => /GET \/reject: worker \d+ exited with status 1 during the request/.test(site.tenantLog('ex')), "lodged's line for the request");
    assert.equal((await site.get('ex', '/hello/again')).status, 200);
  });

  test('a Fastify app routes and parses JSON; its listen() callback ran', async () => {
    const r = await site.get('fy', '/items/42');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.text), { id: '42', ip: '127.0.0.1', host: `fy.localhost:${site.sb.port}` });
    const c = await site.get('fy', '/items', { method: 'POST', body: '{"name":"x"}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(JSON.parse(c.text), { created: { name: 'x' } });
    const bad = await site.get('fy', '/items', { method: 'POST', body: '{not json', headers: { 'Content-Type': 'application/json' } });
    assert.equal(bad.status, 400, "Fastify's own answer to a bad body");
    assert.match(site.tenantLog('fy'), /fastify at http:\/\/127\.0\.0\.1:3000/);
  });

  test('an ES module app ("type": "module") loads its own modules; a second listen() is no error', async () => {
    const r = await site.get('esm', '/x?y');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'hello /x?y (esm)');
    const m = await site.get('mjs', '/');
    assert.equal(m.status, 200, m.text);
    assert.equal(m.text, 'top-level await');
  });

  test('an app that throws while loading gets a 502; the logs say where and what, and the status an event', async () => {
    const r = await site.get('throws', '/');
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.text, /9876/);
    await eventually(() => /server\.js line 2: TypeError: broken at start 9876/.test(site.errorLog()), "Apache's error log names the file, line and error");
    assert.match(site.tenantLog('throws'), /uncaught exception:\nTypeError: broken at start 9876\n\s+at .*server\.js:2:7/);
    assert.doesNotMatch(site.tenantLog('throws'), /runtime-node/, "the runtime's own frames are left out");
    const snap = statusSnapshot.parse(JSON.parse(spawnSync(process.execPath, [CLI, 'status', '--socket', site.sb.socket, '--json'], { encoding: 'utf8' }).stdout));
    const ev = snap.events.find((e) => e.kind === 'start-failed' && e.app === path.join(site.root, 'throws'));
    assert.ok(ev, 'a start-failed event for the app');
    assert.match(ev.message, /broken at start 9876/);
  });

  test('an app that never calls listen() gets a 502 saying so', async () => {
    const r = await site.get('nolisten', '/');
    assert.equal(r.status, 502);
    await eventually(() => /server\.js finished loading without calling listen\(\) on a server/.test(site.errorLog()), "Apache's error log says why");
    assert.match(site.tenantLog('nolisten'), /made a server, never listened/);
    assert.match(site.tenantLog('nolisten'), /cannot start: server\.js finished loading without calling listen\(\)/);
  });
});
