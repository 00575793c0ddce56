# The Node reference: Apache's mod_proxy_http, reusing its connections to the backend
# (keep-alive), in front of the node hello app in two cluster workers on a unix socket,
# as ../shared/anchor-bench's proxy_node runs it. Every ratio of node-hello is to this
# column. The backend runs as www-data (setpriv), so the socket it makes is Apache's
# children's to connect to.
#
# Process tree: Apache parent -> Apache children
#               node-cluster primary (its own session) -> two node workers (apps/node/server.js)

NODE_BIN=/usr/bin/node
NODE_WORKERS=2

proxynode_desc() { echo "Apache mpm_event + mod_proxy_http (backend keep-alive) -> node apps/node/server.js, $NODE_WORKERS cluster workers on a unix socket (node-hello reference)"; }
proxynode_version() { echo "$(apache_version); node $("$NODE_BIN" --version)"; }
proxynode_apps() { echo node-hello; }

# proxynode_start RUN PORT APPS
proxynode_start() {
  local run=$1 port=$2 apps=$3
  local own="$run/node" sock="$run/node/node.sock"
  mkdir -p "$own" && chown www-data:www-data "$own"
  backend_as_www "$run" node "$NODE_BIN" "$BENCH/lib/node-cluster.js" "$apps/node/server.js" "$sock" "$NODE_WORKERS"
  wait_socket "$run/node.pid" "$sock" "$run/node.out" || return 1
  proxy_http_start "$run" "$port" "$apps" "$sock"
}

proxynode_roots() { cat "$1/httpd.pid" "$1/node.pid" 2>/dev/null; }

proxynode_stop() {
  apache_stop "$1"
  # node-cluster.js: SIGTERM stops the workers, then the primary.
  stop_backend "$1/node.pid" "node-cluster"
}

proxynode_logs() { echo "$1/apache-start.out $1/error.log $1/node.out"; }
