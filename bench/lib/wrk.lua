-- wrk script for every measured point.
-- BENCH_POST_BYTES=N makes every request a POST with an N-byte body (the upload app).
-- No request()/response() callbacks: wrk keeps sending its one prepared request, so
-- the script costs nothing per request. done() prints one line for run.sh to parse.
local post = tonumber(os.getenv("BENCH_POST_BYTES") or "") or 0
if post > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("u", post)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write("BENCH",
    " requests=", summary.requests,
    " rps=", string.format("%.2f", summary.requests / seconds),
    " p50_us=", latency:percentile(50),
    " p90_us=", latency:percentile(90),
    " p99_us=", latency:percentile(99),
    " max_us=", latency.max,
    " sock_errors=", e.connect + e.read + e.write + e.timeout,
    " non2xx=", e.status, "\n")
end
