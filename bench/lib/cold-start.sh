# An idle Flask app's first request, for run.sh (sourced) once the rounds are done,
# when the `lodge` system ran: cold-start.js in a real sandbox, as the lodge tenant's
# user. Writes OUT/cold-start.json, which report.py turns into a section of
# results.md (status_report.py); what failed goes to OUT/notes.txt.

# cold_start OUT WORK TRIES PORT (sandbox_step is status-cost.sh's)
cold_start() {
  local out=$1 dir="$2/coldstart" tries=$3 port=$4 logs="$1/logs/coldstart"
  say "cold start: $tries first requests of an idle Flask app on 127.0.0.1:$port, reaped between; about $((tries * 6)) s"
  sandbox_step "cold start" cold-start.js "$out" "$dir" "$logs" 600 --out "$out/cold-start.json" --port "$port" --tries "$tries"
}
