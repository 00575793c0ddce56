# The status model's cost, for run.sh (sourced) once the rounds are done, when the
# `lodge` system ran: lodged's memory per idle app in a real sandbox
# (status-cost.js, as the lodge tenant's user) and the model's own cost in process
# (status-hooks.js). Writes OUT/status-cost.json and OUT/status-hooks.json, which
# report.py turns into a section of results.md; what failed goes to OUT/notes.txt.

# sandbox_step TITLE SCRIPT OUT DIR LOGS SECONDS ARGS...: one of the steps in a real
# sandbox (bench/lib/SCRIPT, sandbox-step.js), as the lodge tenant's user, in DIR,
# bounded to SECONDS; its progress in LOGS (a file: a pipe to tee would break at
# Ctrl-C before the step has stopped its sandbox), then printed; a failure noted.
# The sandbox's logs (OUT/<DIR's name>-*) go to LOGS; what outlived the step is stopped.
sandbox_step() {
  local title=$1 script=$2 out=$3 dir=$4 logs=$5 limit=$6 rc
  shift 6
  mkdir -p "$dir" "$logs" && chmod 755 "$dir"
  timeout --foreground -k 30 "$limit" node "$BENCH/lib/$script" --work "$dir" --user "$LODGE_USER" "$@" >"$logs/${script%.js}.out" 2>&1
  rc=$?
  cat "$logs/${script%.js}.out" >&2
  ((rc == 0)) || echo "$title: the step failed (exit $rc): $(grep -v '^\s*at ' "$logs/${script%.js}.out" | tail -1 | cut -c1-300)" >>"$out/notes.txt"
  mv "$out/${dir##*/}"-* "$logs/" 2>/dev/null
  status_cost_leftovers "$dir"
  return $rc
}

# status_cost OUT WORK APPS PORT
status_cost() {
  local out=$1 dir="$2/statuscost" apps=$3 port=$4 logs="$1/logs/statuscost"
  say "status cost: $apps idle apps (and a fifth more for the live heap) in a real lodged on 127.0.0.1:$port; about $((apps * 15 / 100)) s"
  sandbox_step "status cost" status-cost.js "$out" "$dir" "$logs" 900 --out "$out/status-cost.json" --port "$port" --apps "$apps"
  status_cost_trim "$logs/statuscost-lodged.log"
  say "status cost: the model's hooks, $apps app records, in process"
  node --expose-gc "$BENCH/lib/status-hooks.js" "$apps" >"$out/status-hooks.json" 2>"$logs/status-hooks.out" ||
    { echo "status cost: the in-process step failed: $(tail -1 "$logs/status-hooks.out" | cut -c1-300)" >>"$out/notes.txt"; rm -f "$out/status-hooks.json"; }
}

# status_cost_trim LOG: lodged logs a few lines per app (~400 KiB for 1,200): the
# results keep its first and last 60 lines, and the error lines between by count.
status_cost_trim() {
  [ -f "$1" ] && (($(wc -l <"$1") > 200)) || return 0
  {
    head -60 "$1"
    echo "... (lines cut; the error lines among them, numbers as N, by count:)"
    sed -n '61,$p' "$1" | head -n -60 | grep -a '\[error\]' | cut -d' ' -f3- | sed 's/[0-9]\+/N/g' | sort | uniq -c | sort -rn | head -20
    echo "..."
    tail -60 "$1"
  } >"$1.cut" && mv "$1.cut" "$1"
}

# status_cost_leftovers DIR: the step's Apache and lodged (DIR/pids) and what is
# under them, if any outlived it (it was killed): by pid, and only a process whose
# command line names DIR (a pid can be someone else's by now).
status_cost_leftovers() {
  local pid p left=()
  for pid in $(cat "$1/pids" 2>/dev/null); do
    for p in $(descendants "$pid"); do
      { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF "$1" && left+=("$p")
    done
  done
  ((${#left[@]})) || return 0
  for p in "${left[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${left[@]}"; do wait_gone "$p" 5 || break; done
  kill_leftovers "${left[@]}"
}
