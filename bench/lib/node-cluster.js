// node-cluster.js ENTRY SOCKET WORKERS: runs ENTRY, unmodified, in WORKERS cluster
// workers that share one listening unix socket, SOCKET (given to ENTRY as argv[2]).
// The proxynode system's backend: how a Node app is commonly run behind a proxy on a
// multi-core host, with the worker count of ../shared/anchor-bench's proxy_node.
'use strict';
const cluster = require('node:cluster');

const [entry, socket, count] = process.argv.slice(2);
// Each worker accepts on the shared socket itself (the primary does not hand out
// connections), as the anchor runs it. Must be set before the first fork.
cluster.schedulingPolicy = cluster.SCHED_NONE;
cluster.setupPrimary({ exec: entry, args: [socket] });
for (let i = 0; i < Number(count); i++) cluster.fork();

let stopping = false;
let failed = false;
process.on('SIGTERM', () => {
  stopping = true;
  for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
});
cluster.on('exit', (worker, code, signal) => {
  if (!stopping) {
    // A worker that dies mid-run would silently halve the backend: end it all, so
    // the bench's check or wrk's errors say so.
    console.error(`node-cluster: worker ${worker.process.pid} exited (${signal || code}); stopping`);
    stopping = failed = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
  }
  if (Object.keys(cluster.workers).length === 0) process.exit(failed ? 1 : 0);
});
