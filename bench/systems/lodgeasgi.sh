# Lodge serving the ASGI hello app: the sandbox, tenant and user of the `lodge` system,
# with the app's folder holding apps/asgi/hello_asgi.py, unmodified, and a .htaccess of
# `LodgeApp asgi hello_asgi.py:app` and `LodgeProcesses 2` (uvicorn's two workers).
#
# Process tree: sandbox (node) -> Apache -> Apache children
#                              -> lodged (node) -> Lodge's Python workers
source "$BENCH/systems/lodge.sh"

lodgeasgi_desc() { echo "Apache mpm_event + mod_lodge + lodged (lodge sandbox --bare), LodgeApp asgi hello_asgi.py:app, LodgeProcesses 2, LodgeConcurrency 10 (the default: requests each worker holds at once)"; }
lodgeasgi_version() { lodge_version; }
lodgeasgi_apps() { echo asgi-hello; }
lodgeasgi_setup() { lodge_setup; }
lodgeasgi_teardown() { lodge_teardown; }

# lodgeasgi_start RUN PORT APPS
lodgeasgi_start() {
  local tenant="$1/root/bench"
  mkdir -p "$tenant"
  cp "$3/asgi/hello_asgi.py" "$tenant/"
  printf 'LodgeApp asgi hello_asgi.py:app\nLodgeProcesses 2\n' >"$tenant/.htaccess"
  lodge_sandbox "$1" "$2"
}

lodgeasgi_stop() { lodge_stop "$@"; }
lodgeasgi_roots() { lodge_roots "$@"; }
lodgeasgi_logs() { lodge_logs "$@"; }
