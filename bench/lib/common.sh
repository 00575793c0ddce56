# Helpers for run.sh and systems/*.sh (sourced). Everything started here is a
# private instance in its own run directory, on 127.0.0.1, stopped by pid.

APACHE_BIN=/usr/sbin/apache2
MODDIR=/usr/lib/apache2/modules
PY=/usr/bin/python3   # Debian's python: the one mod_wsgi is built against

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# first_free_port FROM: the first port >= FROM (up to 18999) nothing listens on.
first_free_port() {
  local p
  for ((p = $1; p <= 18999; p++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# descendants PID...: the pids and all their descendants, one per line.
descendants() {
  local todo=("$@") pid
  while ((${#todo[@]})); do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    echo "$pid"
    # shellcheck disable=SC2207
    todo+=($(pgrep -P "$pid" || true))
  done
}

# wait_gone PID SECONDS: 0 once PID has exited.
wait_gone() {
  local pid=$1 i
  for ((i = 0; i < $2 * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

# kill_leftovers PID...: SIGKILL those of the given pids still alive (a stop that
# did not take everything down with it). Pids only, never names.
kill_leftovers() {
  local pid
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-60)) still alive after stop; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# apache_base_conf RUN PORT: what every private Apache of the bench shares: its own
# ServerRoot, pid file and error log in RUN; mpm_event sized as Debian ships it;
# keep-alive with no cap on requests per connection; no access log.
apache_base_conf() {
  cat <<CONF
# private Apache for Lodge's bench, not the system service
ServerRoot "$1"
DefaultRuntimeDir "$1"
PidFile "$1/httpd.pid"
ErrorLog "$1/error.log"
LogLevel warn
ServerName 127.0.0.1
Listen 127.0.0.1:$2
User www-data
Group www-data

LoadModule mpm_event_module $MODDIR/mod_mpm_event.so
LoadModule authz_core_module $MODDIR/mod_authz_core.so
# HTTP/2 in the clear beside HTTP/1.1, for the hello-h2 point (h2load, prior knowledge)
LoadModule http2_module $MODDIR/mod_http2.so
Protocols h2c http/1.1

# Debian's mods-available/mpm_event.conf
StartServers            2
MinSpareThreads         25
MaxSpareThreads         75
ThreadLimit             64
ThreadsPerChild         25
MaxRequestWorkers       150
MaxConnectionsPerChild  0

Timeout 60
KeepAlive On
# Debian caps a connection at 100 requests; wrk's connections should stay open.
MaxKeepAliveRequests 0
KeepAliveTimeout 5
HostnameLookups Off
ServerTokens Prod
EnableSendfile On
# no CustomLog: no access log

<Directory />
  AllowOverride None
  Require all denied
</Directory>
CONF
}

# apache_app_conf RUN PORT APPS: writes RUN/httpd.conf: the base, then the system's
# own lines (stdin), then the grant of the apps' folder to everyone.
apache_app_conf() {
  {
    apache_base_conf "$1" "$2"
    echo
    cat
    printf '<Directory "%s">\n  Require all granted\n</Directory>\n' "$3"
  } >"$1/httpd.conf"
}

# apache_start RUN: starts the Apache of RUN/httpd.conf (it daemonizes) and waits
# for its pid file.
apache_start() {
  local run=$1 i
  "$APACHE_BIN" -f "$run/httpd.conf" -k start >"$run/apache-start.out" 2>&1 || return 1
  for ((i = 0; i < 200; i++)); do
    [ -s "$run/httpd.pid" ] && return 0
    sleep 0.05
  done
  echo "Apache wrote no pid file in 10 s" >>"$run/apache-start.out"
  return 1
}

# apache_stop RUN: stops the Apache of RUN and everything under it, by pid.
apache_stop() {
  local run=$1 pid
  [ -s "$run/httpd.pid" ] || return 0
  pid=$(cat "$run/httpd.pid")
  kill -0 "$pid" 2>/dev/null || return 0
  local tree
  mapfile -t tree < <(descendants "$pid")
  "$APACHE_BIN" -f "$run/httpd.conf" -k stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
  wait_gone "$pid" 20 || say "Apache $pid did not stop in 20 s"
  # Apache's children, mod_wsgi's daemons and Passenger's agents follow their
  # parent within a moment; anything left after that is killed by pid.
  local p
  for p in "${tree[@]}"; do wait_gone "$p" 5 || break; done
  kill_leftovers "${tree[@]}"
}

# wait_socket PIDFILE SOCKET OUT: 0 once the backend of PIDFILE has made SOCKET
# (within 20 s); 1 if it exits first or takes longer (said in OUT).
wait_socket() {
  local i
  for ((i = 0; i < 400; i++)); do
    # Listening, not only there: a server binds (the file appears) before it listens.
    [ -S "$2" ] && "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$2" 2>/dev/null && return 0
    kill -0 "$(cat "$1")" 2>/dev/null || return 1
    sleep 0.05
  done
  echo "bench: no socket $2 in 20 s" >>"$3"
  return 1
}

# backend_as_www RUN NAME COMMAND...: COMMAND as www-data (so the socket it makes is
# Apache's children's to connect to), in a session of its own (a Ctrl-C reaches run.sh,
# whose trap stops it), its output in RUN/NAME.out, its pid in RUN/NAME.pid.
backend_as_www() {
  local run=$1 name=$2
  shift 2
  setsid setpriv --reuid=www-data --regid=www-data --clear-groups "$@" >"$run/$name.out" 2>&1 </dev/null &
  echo $! >"$run/$name.pid"
}

# proxy_http_start RUN PORT APPS SOCKET: Apache's mod_proxy_http in front of the
# backend on the unix SOCKET, reusing its connections (keep-alive, Apache's default);
# ttl=4 closes an idle one before the backend's own 5 s keep-alive timeout does (else a
# request could go out on a connection the backend is closing).
proxy_http_start() {
  apache_app_conf "$1" "$2" "$3" <<CONF
LoadModule proxy_module $MODDIR/mod_proxy.so
LoadModule proxy_http_module $MODDIR/mod_proxy_http.so
ProxyRequests Off
ProxyPass / "unix:$4|http://localhost/" ttl=4
CONF
  apache_start "$1"
}

# stop_backend PIDFILE NAME: SIGTERM to the backend of PIDFILE (a backend started
# beside Apache: its clean shutdown, its workers with it), then whatever of its tree
# is still alive a few seconds later is killed by pid.
stop_backend() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  local tree
  mapfile -t tree < <(descendants "$pid")
  kill -TERM "$pid"
  wait_gone "$pid" 15 || say "$2 $pid did not stop in 15 s"
  local p
  for p in "${tree[@]}"; do wait_gone "$p" 5 || break; done
  kill_leftovers "${tree[@]}"
}
