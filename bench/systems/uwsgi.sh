# uWSGI behind Apache's mod_proxy_uwsgi (Debian's uwsgi-core, its python3 plugin and
# libapache2-mod-proxy-uwsgi), as ../shared/anchor-bench's uwsgi_proxy runs it: a
# master and two worker processes of one request at a time on a unix socket, the
# entry loaded before the workers fork, request logging off. uWSGI binds the socket
# as root, gives it to Apache's user, then runs as that user. Each request is one
# connection from an Apache child to the socket (the uwsgi protocol has no keep-alive).
#
# Process tree: Apache parent -> Apache children
#               uWSGI master (its own session) -> two workers
# Both roots and all their descendants are what the memory and CPU columns count.

UWSGI_BIN=/usr/bin/uwsgi-core

uwsgi_desc() { echo "Apache mpm_event + mod_proxy_uwsgi -> uWSGI (master, processes=2) on a unix socket"; }

uwsgi_version() {
  echo "$(apache_version); uWSGI $("$UWSGI_BIN" --version 2>/dev/null) (deb $(dpkg-query -W -f='${Version}' uwsgi-plugin-python3 2>/dev/null)); $(python_version)"
}

# uwsgi_setup: once before the first round; a missing piece fails every row saying which.
uwsgi_setup() {
  local f
  for f in "$UWSGI_BIN" /usr/lib/uwsgi/plugins/python3_plugin.so "$MODDIR/mod_proxy_uwsgi.so"; do
    [ -e "$f" ] || { say "uwsgi: $f is missing (Debian's uwsgi, uwsgi-plugin-python3, libapache2-mod-proxy-uwsgi)"; return 1; }
  done
}

# uwsgi_start RUN PORT APPS
uwsgi_start() {
  local run=$1 port=$2 apps=$3 sock="$1/uwsgi.sock"
  # Own session, as the sandbox's: a Ctrl-C reaches run.sh, whose trap stops it.
  setsid "$UWSGI_BIN" --plugin python3 \
    --master --processes 2 \
    --socket "$sock" --chmod-socket=660 --chown-socket=www-data:www-data \
    --uid www-data --gid www-data \
    --chdir "$apps" --module wsgi_entry:application --need-app \
    --disable-logging --die-on-term --vacuum \
    --pidfile "$run/uwsgi.pid" >"$run/uwsgi.out" 2>&1 </dev/null &
  echo $! >"$run/uwsgi-master.pid"
  wait_socket "$run/uwsgi-master.pid" "$sock" "$run/uwsgi.out" || return 1
  apache_app_conf "$run" "$port" "$apps" <<CONF
LoadModule proxy_module $MODDIR/mod_proxy.so
LoadModule proxy_uwsgi_module $MODDIR/mod_proxy_uwsgi.so
ProxyRequests Off
ProxyPass / "unix:$sock|uwsgi://localhost/"
CONF
  apache_start "$run"
}

uwsgi_roots() { cat "$1/httpd.pid" "$1/uwsgi-master.pid" 2>/dev/null; }

uwsgi_stop() {
  apache_stop "$1"
  # --die-on-term: SIGTERM is the master's clean shutdown, workers with it.
  stop_backend "$1/uwsgi-master.pid" "uWSGI master"
}

uwsgi_logs() { echo "$1/apache-start.out $1/error.log $1/uwsgi.out"; }
