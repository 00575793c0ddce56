# Lodge: `lodge sandbox` runs a private Apache with mod_lodge plus lodged, one tenant
# per sub-folder of its root. The bench's tenant is ROOT/bench (Host bench.localhost),
# owned by a user of its own, with the same apps and a two-line .htaccess.
#
# Process tree: sandbox (node) -> Apache (-DFOREGROUND) -> Apache children
#                              -> lodged (node) -> Python workers
# The memory columns count the sandbox's children and below: Apache and lodged, as a
# host runs them. The sandbox launcher itself only waits for Ctrl-C and is no part of
# serving (a host has no such process).

LODGE_CLI="$REPO/dist/sidecar/src/cli/main.js"
LODGE_USER=lodge-bench
LODGE_USER_CREATED=

lodge_desc() { echo "Apache mpm_event + mod_lodge straight to the app's socket, lodged supervising (lodge sandbox --bare: the modules the other systems load), LodgeProcesses 2"; }

lodge_version() {
  local commit
  commit=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "?")
  echo "$(apache_version); Lodge $(node -p "require('$REPO/package.json').version" 2>/dev/null) ($commit); node $(node --version); $(python_version)"
}

# lodge_setup: once before the first round. The tenant's folder must belong to a
# user with uid >= 1000 (lodged refuses root's and system users' apps).
lodge_setup() {
  if ! getent passwd "$LODGE_USER" >/dev/null; then
    useradd --no-create-home --shell /usr/sbin/nologin --user-group "$LODGE_USER" || return 1
    LODGE_USER_CREATED=1
  fi
}

# lodge_teardown: after the last round (also on Ctrl-C).
lodge_teardown() {
  if [ -n "$LODGE_USER_CREATED" ]; then
    userdel "$LODGE_USER" 2>/dev/null || say "could not remove user $LODGE_USER (userdel $LODGE_USER)"
    LODGE_USER_CREATED=
  fi
}

# lodge_start RUN PORT APPS
lodge_start() {
  local tenant="$1/root/bench"
  mkdir -p "$tenant"
  cp "$3"/*.py "$tenant/"
  printf 'LodgeApp wsgi wsgi_entry.py\nLodgeProcesses 2\n' >"$tenant/.htaccess"
  lodge_sandbox "$1" "$2"
}

# lodge_sandbox RUN PORT: the tenant RUN/root/bench holds its files and .htaccess;
# gives it to the tenant's user and starts the sandbox on RUN/root.
lodge_sandbox() {
  local run=$1 port=$2 tenant="$1/root/bench"
  if [ ! -f "$LODGE_CLI" ]; then
    echo "not built: $LODGE_CLI is missing (cd $REPO && node scripts/build.js)" >"$run/sandbox.out"
    return 1
  fi
  chown -R "$LODGE_USER:$LODGE_USER" "$tenant"
  chmod -R go-w "$tenant"
  chmod 755 "$run/root" "$tenant"
  # Own session: a Ctrl-C in the terminal reaches run.sh, whose trap stops the
  # sandbox with one SIGTERM (a second signal would kill it before it stops Apache).
  # TMPDIR puts the sandbox's run directory (config, logs) in ours.
  # The bench's one tenant is given all of Apache's workers (limits.tenantRequests
  # 150, MaxRequestWorkers), as a host with one site would: by default a tenant may
  # hold a quarter of them (37), and hello-c64's 64 connections would be refused past
  # that with 503, as they should be on a shared host.
  local config="$run/lodged-settings.json"
  "$PY" -c 'import json, sys
s = json.loads(sys.argv[1])
s.setdefault("limits", {}).setdefault("tenantRequests", 150)
print(json.dumps(s))' "${LODGE_SETTINGS:-"{}"}" >"$config" || return 1
  # 2.4 speaks h2c beside HTTP/1.1, as the other systems' Apaches do; 1.3 has no HTTP/2.
  # --bare: 2.4 loads the other systems' modules (mpm_event, authz_core) and mod_lodge,
  # not the sandbox's usual set for hosting (mime, dir, auth, headers, ...), each of
  # which adds its hooks to every request (~5 us of Apache a request, measured).
  local flags="--h2c --bare"
  [ -n "${LODGE_APACHE:-}" ] && flags=
  TMPDIR="$run" setsid node "$LODGE_CLI" sandbox --root "$run/root" --port "$port" --keep --no-access-log ${LODGE_APACHE:+--apache "$LODGE_APACHE"} $flags ${config:+--config "$config"} \
    >"$run/sandbox.out" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$run/sandbox.pid"
  for ((i = 0; i < 1200; i++)); do
    grep -q 'lodge sandbox ready' "$run/sandbox.out" && {
      # 1.3 is prefork: mpm_event's sizing does not apply there.
      [ -z "${LODGE_APACHE:-}" ] && lodge_compare_conf "$run"
      return 0
    }
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  echo "bench: the sandbox did not say it was ready within 60 s" >>"$run/sandbox.out"
  return 1
}

# lodge_compare_conf RUN: the sandbox writes its own httpd.conf; note in RUN/notes
# where it differs from what the other systems run with.
lodge_compare_conf() {
  local conf line
  conf=$(ls "$1"/lodge-sandbox-*/httpd.conf 2>/dev/null | head -1)
  [ -n "$conf" ] || { echo "lodge: the sandbox's httpd.conf was not found; its Apache settings were not compared" >>"$1/notes"; return 0; }
  while read -r line; do
    grep -Eq "^\s*${line// /\\s+}\s*$" "$conf" ||
      echo "lodge: the sandbox's Apache lacks '$line' (the other systems have it)" >>"$1/notes"
  done <<'LINES'
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
KeepAlive On
MaxKeepAliveRequests 0
User www-data
Protocols h2c http/1.1
LINES
  local extra
  extra=$(grep -Eo '^\s*LoadModule\s+\S+' "$conf" | awk '{print $2}' |
    grep -Evx 'mpm_event_module|authz_core_module|http2_module|lodge_module' | tr '\n' ' ')
  [ -z "$extra" ] ||
    echo "lodge: the sandbox's Apache loads modules the other systems do not: $extra" >>"$1/notes"
  if grep -Eq '^\s*CustomLog' "$conf"; then
    echo "lodge: the sandbox's Apache writes an access log (CustomLog); the other systems write none, so the lodge column pays for one log line per request" >>"$1/notes"
  fi
}

lodge_roots() { pgrep -P "$(cat "$1/sandbox.pid" 2>/dev/null)" 2>/dev/null; }

lodge_stop() {
  local run=$1 pid p
  pid=$(cat "$run/sandbox.pid" 2>/dev/null) || return 0
  # Everything the sandbox started, even what outlived it: its session (setsid made
  # the sandbox the leader) and all their descendants.
  local tree
  mapfile -t tree < <(descendants "$pid" $(ps -e -o pid=,sid= | awk -v s="$pid" '$2 == s && $1 != s {print $1}') | sort -un)
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait_gone "$pid" 30 || say "lodge sandbox $pid did not stop in 30 s"
  else
    # The sandbox is gone (it failed to start): stop what it left behind.
    for p in "${tree[@]}"; do kill -TERM "$p" 2>/dev/null; done
  fi
  for p in "${tree[@]}"; do wait_gone "$p" 5 || break; done
  kill_leftovers "${tree[@]}"
}

lodge_logs() {
  echo "$1/sandbox.out" "$1"/lodge-sandbox-*/error.log "$1"/lodge-sandbox-*/lodged.log "$1/root/bench/logs/lodge.log"
}
