#!/usr/bin/env bash
# npm run bench: Lodge side by side with mod_wsgi daemon mode, uWSGI behind
# mod_proxy_uwsgi and Phusion Passenger, each behind its own private Apache (same
# sizing, same apps, same bytes), measured with wrk on 127.0.0.1. See bench/README.md.
set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/.." && pwd)"
source "$BENCH/lib/common.sh"
source "$BENCH/lib/status-cost.sh"
source "$BENCH/lib/cold-start.sh"

usage() {
  cat <<'HELP'
usage: bash bench/run.sh [-d SECONDS] [-w SECONDS] [-r ROUNDS] [-s "SYSTEMS"] [-a "APPS"] [-n APPS] [-c TRIES]

  -d SECONDS   length of each measured wrk run (default 10)
  -w SECONDS   warm-up before each (default 3, not counted)
  -r ROUNDS    rounds (default 1); even rounds run the systems in reverse order
  -s SYSTEMS   subset of "modwsgi uwsgi passenger lodge" (ratios need modwsgi), or of the
               node systems "proxynode passengernode lodgenode" (ratios need proxynode), or
               of the ASGI systems "uvicorn lodgeasgi" (ratios need uvicorn)
  -a APPS      subset of "hello flask stream upload hello-h2 hello-c64" (the WSGI systems';
               hello-h2 is hello over HTTP/2 in the clear, mod_http2 in each 2.4 Apache;
               hello-c64 is hello with 64 connections instead of 16), "node-hello"
               (the node systems') and "asgi-hello" (the ASGI systems'); default: all
               the chosen systems serve
  -n APPS      idle apps for the status model's cost, measured after the rounds
               when "lodge" is among the systems (default 1000; 0 skips it)
  -c TRIES     cold starts of an idle Flask app, measured after the rounds when
               "lodge" is among the systems (default 20; 0 skips them)

Runs as root (Apache's children run as www-data, the tenant as its own user).
Writes bench/results/<UTC date-time>/results.md (printed too), results.tsv, raw/, logs/.
HELP
}

DURATION=10 WARMUP=3 ROUNDS=1 STATUS_APPS=1000 COLD_TRIES=20
SYSTEMS="modwsgi uwsgi passenger lodge"
# mod_lodge in Apache 1.3 (prefork; built when APXS13 names a 1.3 apxs), compared with
# mod_wsgi on 2.4 in the same run.
[ -n "${APXS13:-}" ] && SYSTEMS+=" lodge-1.3"
ALL_APPS="hello flask stream upload hello-h2 hello-c64 node-hello asgi-hello"
APPS=
while getopts 'd:w:r:s:a:n:c:h' opt; do
  case $opt in
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    s) SYSTEMS=$OPTARG ;;
    a) APPS=$OPTARG ;;
    n) STATUS_APPS=$OPTARG ;;
    c) COLD_TRIES=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
for n in "$DURATION" "$WARMUP" "$ROUNDS" "$STATUS_APPS" "$COLD_TRIES"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "bench: -d, -w, -r, -n and -c take whole numbers; got '$n'" >&2; exit 2; }
done
((STATUS_APPS <= 5000)) || { echo "bench: -n takes at most 5000 apps" >&2; exit 2; }
((COLD_TRIES <= 200)) || { echo "bench: -c takes at most 200 tries" >&2; exit 2; }
((DURATION > 0 && ROUNDS > 0)) || { echo "bench: -d and -r must be at least 1" >&2; exit 2; }
for s in $SYSTEMS; do
  [ -f "$BENCH/systems/${s//[^a-z0-9]/}.sh" ] || { echo "bench: no system '$s' (known: modwsgi uwsgi passenger lodge lodge-carried lodge-1.3 proxynode passengernode lodgenode uvicorn lodgeasgi)" >&2; exit 2; }
  source "$BENCH/systems/${s//[^a-z0-9]/}.sh"
done
fn() { echo "${1//[^a-z0-9]/}_$2"; }   # fn lodge-1.3 start -> lodge13_start
# serves SYSTEM: the apps the system serves (a system without NAME_apps serves the WSGI apps).
serves() { if declare -F "$(fn "$1" apps)" >/dev/null; then "$(fn "$1" apps)"; else echo hello flask stream upload hello-h2 hello-c64; fi; }
# apps_of SYSTEM: those of APPS it serves, in APPS's order.
apps_of() { local a mine; mine=" $(serves "$1") "; for a in $APPS; do [[ $mine == *" $a "* ]] && echo "$a"; done; }
for a in $APPS; do
  [[ " $ALL_APPS " == *" $a "* ]] || { echo "bench: no app '$a' (known: $ALL_APPS)" >&2; exit 2; }
done
if [ -z "$APPS" ]; then
  served=" $(for s in $SYSTEMS; do serves "$s"; done | tr '\n' ' ') "
  for a in $ALL_APPS; do [[ $served == *" $a "* ]] && APPS+="${APPS:+ }$a"; done
fi
[ "$(id -u)" = 0 ] || { echo "bench: run as root (Apache's User www-data, the tenant's own user)" >&2; exit 1; }
for tool in wrk "$APACHE_BIN" "$PY" node; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

apache_version() { "$APACHE_BIN" -v | sed -n 's/^Server version: //p'; }
python_version() { "$PY" -c 'import sys; print("Python", sys.version.split()[0])'; }

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT="$BENCH/results/$STAMP"
mkdir -p "$OUT/raw" "$OUT/logs"
# Instances live under /tmp: Apache's children (www-data) and the tenant's workers
# must be able to reach their files, whatever the permissions of the checkout.
WORK=$(mktemp -d /tmp/lodge-bench.XXXXXX)
chmod 755 "$WORK"
# The apps as served: one copy, read-only to everyone but root.
cp -r "$BENCH/apps" "$WORK/apps"
find "$WORK/apps" -name __pycache__ -prune -exec rm -rf {} +
chmod -R u=rwX,go=rX "$WORK/apps"

CURRENT_SYS= CURRENT_RUN= SETUP_DONE=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$CURRENT_SYS" ]; then
    say "stopping $CURRENT_SYS"
    "$(fn "$CURRENT_SYS" stop)" "$CURRENT_RUN"
  fi
  # the status-cost step's sandbox, if it outlived the step
  [ -d "$WORK/statuscost" ] && status_cost_leftovers "$WORK/statuscost"
  [ -d "$WORK/coldstart" ] && status_cost_leftovers "$WORK/coldstart"
  for s in $SETUP_DONE; do
    if declare -F "$(fn "$s" teardown)" >/dev/null; then "$(fn "$s" teardown)"; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---- what the report says about the run
about() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/about.tsv"; }
printf 'key\tvalue\n' >"$OUT/about.tsv"
about date "$(date -u '+%Y-%m-%d %H:%M UTC')"
about nproc "$(nproc)"
about kernel "$(uname -r)"
about cpu "$(sed -n 's/^model name\s*:\s*//p' /proc/cpuinfo | head -1)"
about mem "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
about duration "$DURATION"
about warmup "$WARMUP"
about rounds "$ROUNDS"
about systems "$SYSTEMS"
about apps "$APPS"
about status_apps "$STATUS_APPS"
about cold_tries "$COLD_TRIES"
about wrk "$(wrk -v 2>&1 | head -1)"
for s in $SYSTEMS; do
  about "desc.$s" "$("$(fn "$s" desc)")"
  about "version.$s" "$("$(fn "$s" version)")"
done
: >"$OUT/notes.txt"

COLUMNS_TSV="round position system app status rps requests p50_ms p90_ms p99_ms max_ms sock_errors non2xx procs rss_kib pss_kib load1 note"
tr ' ' '\t' <<<"$COLUMNS_TSV" >"$OUT/results.tsv"
point() { local IFS=$'\t'; echo "$*" >>"$OUT/results.tsv"; }

declare -A PATHS=([hello]=/hello [flask]=/flask/ [stream]=/stream [upload]=/upload [hello-h2]=/hello [hello-c64]=/hello [node-hello]=/hello [asgi-hello]=/hello)
HOST=bench.localhost   # the lodge tenant's name; the other systems ignore it

# reason_from RUN SYSTEM: the telling lines of the system's logs, for the report:
# the last two error-looking lines of the first log that has any (the cause is
# often the line before the last: "Syntax error ..." then "Apache did not start").
reason_from() {
  local f lines
  for f in $("$(fn "$2" logs)" "$1"); do
    [ -s "$f" ] || continue
    lines=$(grep -aiE 'error|fail|refus|cannot|can.t|denied|exception|traceback|not start|unable' "$f" |
      tail -2 | tr '\n' ' ' | sed 's/ $//')
    [ -n "$lines" ] && { echo "${f##*/}: $lines" | cut -c1-400; return; }
  done
  for f in $("$(fn "$2" logs)" "$1"); do
    [ -s "$f" ] && { echo "${f##*/}: $(tail -1 "$f")" | cut -c1-400; return; }
  done
  echo "no log lines"
}

# keep_logs RUN NAME: copy the instance's logs into the results.
keep_logs() {
  local f dest="$OUT/logs/$2"
  mkdir -p "$dest"
  for f in $("$(fn "${2%-r*}" logs)" "$1") "$1/httpd.conf" "$1"/lodge-sandbox-*/httpd.conf; do
    [ -f "$f" ] && cp "$f" "$dest/" 2>/dev/null
  done
  [ -s "$1/notes" ] && cat "$1/notes" >>"$OUT/notes.txt"
}

# fail_all ROUND POS SYSTEM REASON: one failed row per app it serves.
fail_all() {
  local a
  say "$3 FAILED: $4"
  for a in $(apps_of "$3"); do point "$1" "$2" "$3" "$a" failed "" "" "" "" "" "" "" "" "" "" "" "" "${4//$'\t'/ }"; done
}

# load_run APP URL SECONDS OUT: one run of the app's load, its BENCH line in OUT:
# wrk (2 threads, 16 connections, wrk.lua; 64 for hello-c64), or for hello-h2 h2load
# over h2c by prior knowledge (2 threads, 4 connections, 4 streams at a time on each: 16
# in flight, as wrk's 16 connections).
load_run() {
  local app=$1 url=$2 secs=$3 out=$4 post=0 conns=16
  [ "$app" = upload ] && post=1048576
  [ "$app" = hello-c64 ] && conns=64
  if [ "$app" = hello-h2 ]; then
    timeout --foreground $((secs + 30)) h2load -t2 -c4 -m4 -D "$secs" -H ":authority: $HOST" "$url" >"$out.h2load" 2>&1
    "$PY" "$BENCH/lib/h2load_result.py" <"$out.h2load" >"$out"
    cat "$out.h2load" >>"$out" && rm -f "$out.h2load"
  else
    BENCH_POST_BYTES=$post timeout --foreground $((secs + 30)) wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Host: $HOST" \
      -s "$BENCH/lib/wrk.lua" "$url" >"$out" 2>&1
  fi
}

# measure ROUND POS SYSTEM RUN PORT APP
measure() {
  local round=$1 pos=$2 s=$3 run=$4 port=$5 app=$6
  local url="http://127.0.0.1:$port${PATHS[$app]}" raw="$OUT/raw/$s-r$round-$app.txt"
  ((WARMUP > 0)) && load_run "$app" "$url" "$WARMUP" "$WORK/warmup.txt"
  local roots cpu_before cpu_after
  roots=$("$(fn "$s" roots)" "$run")
  # shellcheck disable=SC2086
  cpu_before=$("$PY" "$BENCH/lib/proccpu.py" sample $roots)
  load_run "$app" "$url" "$DURATION" "$raw"
  # shellcheck disable=SC2086
  cpu_after=$("$PY" "$BENCH/lib/proccpu.py" sample $roots)
  local mem load line
  # shellcheck disable=SC2086
  mem=$("$PY" "$BENCH/lib/procmem.py" $roots)
  load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(grep '^BENCH ' "$raw")
  if [ -z "$line" ]; then
    point "$round" "$pos" "$s" "$app" failed "" "" "" "" "" "" "" "" "" "" "" "$load" "wrk gave no result: $(tail -1 "$raw")"
    say "$s $app: wrk gave no result (see $raw)"
    return
  fi
  local -A r
  local kv
  for kv in ${line#BENCH }; do r[${kv%%=*}]=${kv#*=}; done
  ms() { [ -n "$1" ] && awk -v us="$1" 'BEGIN {printf "%.3f", us / 1000}'; }
  local procs rss pss
  read -r procs rss pss <<<"$mem"
  # CPU microseconds per request by process kind: round system app kind us
  local kv2
  for kv2 in $("$PY" "$BENCH/lib/proccpu.py" per-request "$cpu_before" "$cpu_after" "${r[requests]}"); do
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$app" "${kv2%%=*}" "${kv2#*=}" >>"$OUT/cpu.tsv"
  done
  local note=
  [ -n "${r[mean_us]:-}" ] && note="h2load: no percentiles; mean $(ms "${r[mean_us]}") ms"
  point "$round" "$pos" "$s" "$app" ok "${r[rps]}" "${r[requests]}" "$(ms "${r[p50_us]:-}")" "$(ms "${r[p90_us]:-}")" \
    "$(ms "${r[p99_us]:-}")" "$(ms "${r[max_us]:-}")" "${r[sock_errors]}" "${r[non2xx]}" "$procs" "$rss" "$pss" "$load" "$note"
  say "$s $app: $(printf '%.0f' "${r[rps]}") req/s, p50 $(ms "${r[p50_us]:-}") ms, p99 $(ms "${r[p99_us]:-}") ms${note:+ ($note)}, errors ${r[sock_errors]}/${r[non2xx]}, $procs procs, PSS $((pss / 1024)) MiB"
}

# ---- the run
NEXT_PORT=$((18000 + RANDOM % 500))
say "results in $OUT"
for ((round = 1; round <= ROUNDS; round++)); do
  order=$SYSTEMS
  ((round % 2 == 0)) && order=$(tr ' ' '\n' <<<"$SYSTEMS" | grep -v '^$' | tac | tr '\n' ' ')
  pos=0
  for s in $order; do
    sys_apps=$(apps_of "$s" | tr '\n' ' ')
    [ -n "$sys_apps" ] || continue   # serves none of the apps asked for
    pos=$((pos + 1))
    if [[ " $SETUP_DONE " != *" $s "* ]]; then
      if declare -F "$(fn "$s" setup)" >/dev/null && ! "$(fn "$s" setup)"; then
        fail_all "$round" "$pos" "$s" "setup failed"
        continue
      fi
      SETUP_DONE+=" $s"
    fi
    run="$WORK/$s-r$round"
    mkdir -p "$run" && chmod 755 "$run"
    port=$(first_free_port "$NEXT_PORT") || { fail_all "$round" "$pos" "$s" "no free port in 18000-18999"; continue; }
    NEXT_PORT=$((port + 1))
    say "round $round: starting $s on 127.0.0.1:$port"
    CURRENT_SYS=$s CURRENT_RUN=$run
    if ! "$(fn "$s" start)" "$run" "$port" "$WORK/apps"; then
      fail_all "$round" "$pos" "$s" "did not start: $(reason_from "$run" "$s")"
    elif ! why=$("$PY" "$BENCH/lib/probe.py" wait "$port" "$HOST" /hello 60); then
      fail_all "$round" "$pos" "$s" "not answering: $why; $(reason_from "$run" "$s")"
    elif ! why=$("$PY" "$BENCH/lib/probe.py" check "$port" "$HOST" $sys_apps); then
      fail_all "$round" "$pos" "$s" "wrong response: $why; $(reason_from "$run" "$s")"
    else
      for a in $sys_apps; do measure "$round" "$pos" "$s" "$run" "$port" "$a"; done
    fi
    say "stopping $s"
    "$(fn "$s" stop)" "$run"
    CURRENT_SYS=
    keep_logs "$run" "$s-r$round"
  done
done

# ---- what keeping the status model costs lodged (bench/lib/status-cost.sh)
if ((STATUS_APPS > 0)) && [[ " $SETUP_DONE " == *" lodge "* ]]; then
  if port=$(first_free_port "$NEXT_PORT"); then
    status_cost "$OUT" "$WORK" "$STATUS_APPS" "$port"
  else
    echo "status cost: not measured: no free port in 18000-18999" >>"$OUT/notes.txt"
  fi
fi

# ---- an idle app's first request (bench/lib/cold-start.sh)
if ((COLD_TRIES > 0)) && [[ " $SETUP_DONE " == *" lodge "* ]]; then
  if port=$(first_free_port "$NEXT_PORT"); then
    NEXT_PORT=$((port + 1))
    cold_start "$OUT" "$WORK" "$COLD_TRIES" "$port"
  else
    echo "cold start: not measured: no free port in 18000-18999" >>"$OUT/notes.txt"
  fi
fi

sort -u "$OUT/notes.txt" -o "$OUT/notes.txt"
"$PY" "$BENCH/lib/report.py" "$OUT" >"$OUT/results.md" || { echo "bench: the report failed; the points are in $OUT/results.tsv" >&2; exit 1; }
echo
cat "$OUT/results.md"
