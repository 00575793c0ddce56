# Lodge serving the node hello app: the sandbox, tenant and user of the `lodge` system,
# with the app's folder holding apps/node/server.js, unmodified, and a .htaccess of
# `LodgeApp node server.js` and `LodgeProcesses 2` (the others' two node processes).
# lodged runs it under lodged.json's `node` (the default, /usr/bin/node).
#
# Process tree: sandbox (node) -> Apache -> Apache children
#                              -> lodged (node) -> Lodge's node workers
source "$BENCH/systems/lodge.sh"

lodgenode_desc() { echo "Apache mpm_event + mod_lodge + lodged (lodge sandbox --bare), LodgeApp node server.js, LodgeProcesses 2, LodgeConcurrency 10 (the default: requests each worker holds at once)"; }
lodgenode_version() { lodge_version | sed 's/; Python [^;]*$//'; }
lodgenode_apps() { echo node-hello; }
lodgenode_setup() { lodge_setup; }
lodgenode_teardown() { lodge_teardown; }

# lodgenode_start RUN PORT APPS
lodgenode_start() {
  local tenant="$1/root/bench"
  mkdir -p "$tenant"
  cp "$3/node/server.js" "$tenant/"
  printf 'LodgeApp node server.js\nLodgeProcesses 2\n' >"$tenant/.htaccess"
  lodge_sandbox "$1" "$2"
}

lodgenode_stop() { lodge_stop "$@"; }
lodgenode_roots() { lodge_roots "$@"; }
lodgenode_logs() { lodge_logs "$@"; }
