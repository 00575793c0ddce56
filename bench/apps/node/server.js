// The Node hello app: plain http.createServer, the bytes of hello.py's hello
// ("Hello, world!\n", text/plain, Content-Length 14) on GET /hello, 404 otherwise.
// Every node system runs this file unmodified: proxynode passes the socket to listen
// on as argv[2]; under Passenger and Lodge, listen() is caught, so what it is given
// (process.env.PORT, or 3000 when unset) opens nothing.
'use strict';
const http = require('node:http');

const BODY = Buffer.from('Hello, world!\n');
const NOT_FOUND = Buffer.from('not found\n');

const server = http.createServer((req, res) => {
  if (req.url === '/hello') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
    res.end(BODY);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': NOT_FOUND.length });
    res.end(NOT_FOUND);
  }
});

server.listen(process.argv[2] || process.env.PORT || 3000);
