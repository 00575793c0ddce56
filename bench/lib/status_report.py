"""The status model's cost (status-cost.json, status-hooks.json, cpu.tsv of one run) ->
a section of results.md. See bench/lib/status-cost.sh."""
import json
import os


def cell(text):
    return "`%s`" % str(text).replace("`", "'").replace("|", "/")[:60]


def load(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def lodged_us(out):
    """app -> lodged's CPU µs per request in the `lodge` rows of cpu.tsv, mean over rounds."""
    per = {}
    path = os.path.join(out, "cpu.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 5 and parts[1] == "lodge" and parts[3] == "lodged":
                    per.setdefault(parts[2], []).append(float(parts[4]))
    return {app: sum(v) / len(v) for app, v in per.items()}


def slope(a, b, key):
    """KiB per app between two points."""
    return (b[key] - a[key]) / (b["apps"] - a["apps"]) if b["apps"] != a["apps"] else None


def live_lines(live):
    pts = {p["name"]: p for p in live["points"]}
    start, warm, idle = pts["start"], pts["warm"], pts["idle"]
    lines = ["### lodged with idle apps (a real sandbox)", "",
             "One tenant (`cost.localhost`, the user `lodge-bench`) with one folder per app, "
             "each `.htaccess` `LodgeApp wsgi app.py`, `LodgeProcesses 1`, `LodgeIdle 1`; "
             "every app asked once through Apache + mod_lodge (%d at a time), then every "
             "worker reaped (no process of the user left); lodged's `/proc/PID/smaps_rollup` "
             "3 s later. Failed requests: %d%s." % (
                 live["concurrency"], live["failures"],
                 (": " + "; ".join(live["failed"][:3])) if live["failures"] else ""),
             "", "| point | idle apps | RSS MiB | PSS MiB | of it anon | of it file | malloc heap | V8 heap used / mapped | ArrayBuffers |",
             "|---|---|---|---|---|---|---|---|---|"]
    mib = lambda p, k: ("%.1f" % (p[k] / 1024)) if k in p else "-"
    for p in (start, warm, idle):
        pr = p.get("probe", {})
        lines.append("| %s | %d | %.1f | %.1f | %s | %s | %s | %s | %s |" % (
            p["name"], p["apps"], p["rssKiB"] / 1024, p["pssKiB"] / 1024, mib(p, "pssAnonKiB"), mib(p, "pssFileKiB"),
            mib(p, "mallocHeapKiB"), ("%s / %s" % (mib(pr, "heapUsedKiB"), mib(pr, "heapPhysicalKiB"))) if pr else "-",
            mib(pr, "arrayBuffersKiB")))
    lines += ["", "PSS's file part is node's code, shared with the other node processes on the machine "
              "(it moves with them); the anonymous part is lodged's own. A lodged that is the host's only "
              "node process has a PSS of about its RSS (a bare `node` has an RSS of ~40 MiB, 6 MiB of it anonymous)."]
    heap = live["heap"]
    per_heap = (heap[1]["kib"] - heap[0]["kib"]) / (heap[1]["apps"] - heap[0]["apps"])
    g = heap[1]["growth"]
    kinds = lambda items: ", ".join("%s %+d" % (cell(d["kind"]), d["bytes"]) for d in items)
    lines += ["",
              "Per idle app, lodged's **live heap** (heap snapshots after a full GC, %d → %d apps: "
              "%.2f → %.2f MiB): the kinds of objects that grew hold **%.2f KiB per app** (%s); "
              "others shrank by %.2f KiB per app (%s), so the net is %.2f KiB per app. Each new app "
              "still held its latency window (given back only by a status read a minute later). RSS "
              "grew %.1f KiB and PSS %.1f KiB per app from %d to %d apps (%.1f and %.1f KiB counted "
              "from 0 apps, which includes what lodged loads for its first requests): RSS keeps "
              "whatever the heap grew to while the apps started, and PSS moves with the other node "
              "processes on the machine, so they bound the cost from above." % (
                  heap[0]["apps"], heap[1]["apps"], heap[0]["kib"] / 1024, heap[1]["kib"] / 1024,
                  g["grewBytes"] / 1024, kinds(g["grew"]), -g["shrankBytes"] / 1024, kinds(g["shrank"]), per_heap,
                  slope(warm, idle, "rssKiB"), slope(warm, idle, "pssKiB"), warm["apps"], idle["apps"],
                  slope(start, idle, "rssKiB"), slope(start, idle, "pssKiB")),
              "",
              "The status location's JSON (`/lodge-status/?json`) of those %d apps: **%s bytes** "
              "(%.0f per app), states %s, %d workers. Asking the %d apps took %.0f s; lodged spent "
              "%.1f ms of CPU per cold start." % (
                  live["json"]["apps"], format(live["json"]["bytes"], ","), live["json"]["bytes"] / max(1, live["json"]["apps"]),
                  ", ".join("%s %d" % kv for kv in sorted(live["json"]["states"].items())), live["json"]["workers"],
                  idle["apps"] - warm["apps"], idle["askMs"] / 1000, idle["lodgedCpuMsPerColdRequest"] or 0)]
    return lines


def hook_lines(hooks, lodged):
    ns = hooks["hooksNs"]
    rec = hooks["recordBytes"]
    snap = hooks["snapshot"]
    lines = ["### The model's own part (in process, lodged's classes)", "",
             "Bytes per app record (`AppRecord` in an `AppBook`, %s records, after a full GC): "
             "**%.0f** never requested, **%.0f** requested once then idle." % (format(rec["records"], ","), rec["never"], rec["once"]),
             "",
             "ns per request of the hooks, the best of 3 × %s calls: **%.0f ns** for a request "
             "served by a worker (`performance.now()` at its start, `responseStatus()` of the "
             "first chunk, `AppRecord.ended()` at its end), %.0f ns with the requests spread "
             "over %d app records, %.0f ns for a lent request (`releasedStatus()`). Of that: "
             "`responseStatus` %.0f, a clock read %.0f, `queued` %.0f (only when a request "
             "waits); the loop itself %.0f." % (
                 format(hooks["calls"], ","), ns["request"], ns["requestAcrossApps"], snap["apps"],
                 ns["lentRequest"], ns["responseStatus"], ns["clock"], ns["queued"], ns["emptyLoop"]),
             "",
             "A snapshot of %d idle app records (no live pool): %.1f ms to make and stringify, "
             "JSON %s bytes, Prometheus text %s bytes." % (
                 snap["apps"], snap["snapshotMs"], format(snap["jsonBytes"], ","), format(snap["metricsBytes"], ","))]
    if lodged:
        lines += ["", "| app | lodged µs/request (CPU table) | hooks µs/request | hooks' share |", "|---|---|---|---|"]
        for app, us in sorted(lodged.items()):
            lines.append("| %s | %.0f | %.2f | %.2f %% |" % (app, us, ns["request"] / 1000, 100 * ns["request"] / 1000 / us))
    else:
        lines += ["", "(No `lodge` row in this run's CPU table: the hooks' share of lodged's CPU per request is not given.)"]
    return lines


def cold_start_lines(cold):
    """cold-start.json (bench/lib/cold-start.js) -> its section."""
    m, x = cold["median"], cold["max"]
    return ["", "## An idle app's first request (cold start)", "",
            "A Flask app (`bench/apps/flask_app.py` behind a wrapper that notes its import) with no "
            "worker, its pool forgotten, asked once through Apache + mod_lodge; %d tries, the app reaped "
            "between; load average %.1f at the end." % (cold["tries"], cold["load1"]), "",
            "| ms | first request | before the app's import | the app's import | after it | the same app warm |",
            "|---|---|---|---|---|---|",
            "| median (goal ≤ 150) | **%s** | %s | %s | %s | %s |" % (m["totalMs"], m["beforeImportMs"], m["importMs"], m["afterImportMs"], m["warmMs"]),
            "| max | %s | %s | %s | %s | %s |" % (x["totalMs"], x["beforeImportMs"], x["importMs"], x["afterImportMs"], x["warmMs"]),
            "",
            "Before the app's import: Apache, mod_lodge, lodged, lodge-spawn, then the interpreter's start "
            "with the runtime's own imports, which take %s ms alone (as the tenant, `python3 -I "
            "wsgi_worker.py` with no channel); so Apache + lodged + spawning take about %s ms. After the "
            "import: READY, the request handed over, Flask's first answer, the way back." % (
                cold["runtimeStartMs"], cold["lodgedAndSpawnMs"])]


def status_cost_lines(out):
    live = load(out, "status-cost.json")
    hooks = load(out, "status-hooks.json")
    cold = load(out, "cold-start.json")
    lines = []
    if live or hooks:
        lines += ["", "## What keeping the status model costs lodged", ""]
    if live:
        lines += live_lines(live) + [""]
    if hooks:
        lines += hook_lines(hooks, lodged_us(out))
    if cold:
        lines += cold_start_lines(cold)
    return lines
