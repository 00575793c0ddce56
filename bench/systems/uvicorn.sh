# The ASGI reference: uvicorn (Debian's python3-uvicorn) with two worker processes on a
# unix socket, behind Apache's mod_proxy_http reusing its backend connections, serving
# apps/asgi/hello_asgi.py. Every ratio of asgi-hello is to this column. The backend runs
# as www-data (setpriv), so the socket it makes is Apache's children's to connect to.
#
# Process tree: Apache parent -> Apache children
#               uvicorn (its own session) -> two uvicorn workers

UVICORN_WORKERS=2

uvicorn_desc() { echo "Apache mpm_event + mod_proxy_http (backend keep-alive) -> uvicorn apps/asgi/hello_asgi.py:app, $UVICORN_WORKERS workers on a unix socket (asgi-hello reference)"; }
uvicorn_version() { echo "$(apache_version); uvicorn $("$PY" -c 'import uvicorn; print(uvicorn.__version__)' 2>/dev/null); $(python_version)"; }
uvicorn_apps() { echo asgi-hello; }

# uvicorn_start RUN PORT APPS
uvicorn_start() {
  local run=$1 port=$2 apps=$3
  local own="$run/uvicorn" sock="$run/uvicorn/uvicorn.sock"
  mkdir -p "$own" && chown www-data:www-data "$own"
  # No access log (the other systems write none either).
  backend_as_www "$run" uvicorn "$PY" -m uvicorn --app-dir "$apps/asgi" --uds "$sock" \
    --workers "$UVICORN_WORKERS" --no-access-log --log-level warning hello_asgi:app
  wait_socket "$run/uvicorn.pid" "$sock" "$run/uvicorn.out" || return 1
  proxy_http_start "$run" "$port" "$apps" "$sock"
}

uvicorn_roots() { cat "$1/httpd.pid" "$1/uvicorn.pid" 2>/dev/null; }

uvicorn_stop() {
  apache_stop "$1"
  # uvicorn's supervisor: SIGTERM stops the workers, then itself.
  stop_backend "$1/uvicorn.pid" "uvicorn"
}

uvicorn_logs() { echo "$1/apache-start.out $1/error.log $1/uvicorn.out"; }
