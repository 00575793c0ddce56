import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// The kinds of server a Node app may listen on, and a client that leaves mid-response.
// lodged runs with `direct: true` here: a Node app is still served (through lodged; the
// runtime takes nothing from an app socket), beside a WSGI app that goes straight.

const HTTPS_APP = `
const fs = require('node:fs');
const https = require('node:https');
https.createServer({ key: fs.readFileSync('key.pem'), cert: fs.readFileSync('cert.pem') }, (req, res) => {
  res.end('https server, encrypted=' + Boolean(req.socket.encrypted) + ' proto=' + req.headers['x-forwarded-proto']);
}).listen(8443);
`;

// A raw net server that speaks HTTP by hand: the worker feeds it the request's bytes and
// reads what it writes as an HTTP response.
const NET_APP = `
require('node:net').createServer((sock) => {
  sock.once('data', (d) => {
    const line = d.toString('latin1').split('\\r\\n')[0];
    const body = 'raw ' + line;
    sock.end('HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n' + body);
  });
}).listen('/tmp/ignored.sock');
`;

// Writes until the client goes; notes in a file that the app saw its request close.
const ENDLESS_APP = `
const fs = require('node:fs');
require('node:http').createServer((req, res) => {
  if (req.url !== '/endless') return res.end(String(process.pid));
  const chunk = Buffer.alloc(64 * 1024, 120);
  const t = setInterval(() => res.write(chunk), 5);
  res.on('close', () => { clearInterval(t); fs.writeFileSync('tmp/closed', 'closed ' + res.writableFinished); });
}).listen(3000);
`;

// Written for cluster: the primary forks, the workers listen.
const CLUSTER_APP = `
const cluster = require('node:cluster');
const http = require('node:http');
if (cluster.isPrimary) {
  for (let i = 0; i < 4; i++) cluster.fork();
} else {
  http.createServer((req, res) => res.end('cluster worker ' + cluster.isWorker)).listen(3000);
}
`;

const WSGI = 'def application(e, s):\n    s("200 OK", [])\n    return [b"wsgi"]\n';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    const tls = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'cert.pem')], { stdio: 'ignore' });
    const key = fs.readFileSync(path.join(tls, 'key.pem'));
    const cert = fs.readFileSync(path.join(tls, 'cert.pem'));
    fs.rmSync(tls, { recursive: true, force: true });
    site = await startSite(
      {
        tls: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': HTTPS_APP, 'key.pem': key, 'cert.pem': cert },
        raw: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': NET_APP },
        endless: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 1\n', 'server.js': ENDLESS_APP, 'tmp/.keep': '' },
        py: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': WSGI },
        cl: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': CLUSTER_APP },
      },
      { direct: true },
      apache,
    );
  });
  after(async () => site?.stop());

  test("an https server gets the request Apache decrypted, as 'secureConnection'", async () => {
    const r = await site.get('tls', '/');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'https server, encrypted=false proto=http');
  });

  test('a plain net server that writes HTTP by hand is answered as it wrote', async () => {
    const r = await site.get('raw', '/p?q=1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'raw GET /p?q=1 HTTP/1.1');
    assert.equal(r.headers['content-type'], 'text/plain');
  });

  test("a client that leaves mid-response: the app's response sees 'close', the worker lives on", async () => {
    const pid = (await site.get('endless', '/')).text;
    fs.rmSync(path.join(site.root, 'endless', 'tmp', 'closed'), { force: true });
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: site.sb.port, path: '/endless', headers: { Host: `endless.localhost:${site.sb.port}` }, agent: false }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 1024 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    await eventually(() => fs.existsSync(path.join(site.root, 'endless', 'tmp', 'closed')), "the app's response saw 'close'");
    assert.equal(fs.readFileSync(path.join(site.root, 'endless', 'tmp', 'closed'), 'utf8'), 'closed false');
    assert.equal((await site.get('endless', '/')).text, pid, 'the same worker serves the next request');
  });

  test("an app written for cluster runs its worker's side (lodged is the primary)", async () => {
    const r = await site.get('cl', '/');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'cluster worker true');
  });

  test('with direct on, a WSGI app beside them is served too', async () => {
    assert.equal((await site.get('py', '/')).text, 'wsgi');
    assert.equal((await site.get('py', '/')).text, 'wsgi');
    assert.equal((await site.get('raw', '/again')).text, 'raw GET /again HTTP/1.1');
  });
});
