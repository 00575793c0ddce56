// An unmodified Node app: plain http, listening where it likes. Under Lodge the
// listen() opens no port; the worker serves Apache's requests on this server.
'use strict';
const http = require('node:http');

const started = new Date().toISOString();
let served = 0;

http
  .createServer((req, res) => {
    served++;
    if (req.url === '/json') {
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify({ pid: process.pid, started, served, client: req.headers['x-forwarded-for'] ?? null }) + '\n');
    }
    res.setHeader('Content-Type', 'text/plain');
    res.end(`Hello from Node ${process.version}, worker ${process.pid} (${served} requests since ${started})\n`);
  })
  .listen(process.env.PORT || 3000);
