"""results.tsv (+ about.tsv, notes.txt) of one bench run -> results.md on stdout.

  report.py OUT_DIR

Ratios: per round, system req/s / the app's reference's req/s in that same round
(modwsgi; proxynode for node-hello, uvicorn for asgi-hello); then the geometric mean over the rounds where
both answered. Latency and memory are means over rounds.
"""
import csv
import math
import os
import sys

from status_report import status_cost_lines

REF = "modwsgi"
# The apps only other systems serve, and the column their ratios are to.
REF_OF = {"node-hello": "proxynode", "asgi-hello": "uvicorn"}


def ref_of(app):
    return REF_OF.get(app, REF)


def load_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(text):
    return float(text) if text not in ("", None) else None


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def fmt(value, spec=",.0f"):
    return "" if value is None else format(value, spec)


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def cpu_table(out, systems, apps):
    """cpu.tsv (round, system, app, kind, us) -> CPU µs per request by process kind."""
    path = os.path.join(out, "cpu.tsv")
    if not os.path.exists(path):
        return []
    per = {}  # (app, system) -> kind -> [us per round]
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5:
                _, system, app, kind, us = parts
                per.setdefault((app, system), {}).setdefault(kind, []).append(float(us))
    lines = ["", "## CPU per request by process kind", "",
             "CPU time (user + system) of each kind of process over the measured run, "
             "divided by the requests served; mean over rounds, µs.", "",
             "| app | system | by kind | total µs |", "|---|---|---|---|"]
    for app in apps:
        for s in systems:
            kinds = per.get((app, s))
            if not kinds:
                continue
            means = {k: mean(v) for k, v in kinds.items()}
            shown = ", ".join("%s %.0f" % (k, v) for k, v in sorted(means.items(), key=lambda kv: -kv[1]) if v >= 0.5)
            lines.append("| %s | %s | %s | %.0f |" % (app, s, shown, sum(means.values())))
    return lines


def main(out):
    rows = load_tsv(os.path.join(out, "results.tsv"))
    about = {r["key"]: r["value"] for r in load_tsv(os.path.join(out, "about.tsv"))}
    systems = about["systems"].split()
    apps = about["apps"].split()
    rounds = sorted({int(r["round"]) for r in rows}) or [1]
    point = {(int(r["round"]), r["system"], r["app"]): r for r in rows}

    def rps(rnd, system, app):
        r = point.get((rnd, system, app))
        return num(r["rps"]) if r and r["status"] == "ok" else None

    lines = ["# Lodge bench, %s" % about["date"], ""]
    lines.append("Machine: %s CPUs (%s), kernel %s, %s RAM. wrk -t2 -c16 (hello-c64: -c64) -d%ss --latency, "
                 "keep-alive, after a %ss warm-up; %d round(s), even rounds in reverse order; "
                 "every system freshly started each round; load on 127.0.0.1 only."
                 % (about["nproc"], about["cpu"], about["kernel"], about["mem"],
                    about["duration"], about["warmup"], len(rounds)))
    lines += ["", "| system | what | versions |", "|---|---|---|"]
    for s in systems:
        lines.append("| %s | %s | %s |" % (s, cell(about.get("desc." + s, "")), cell(about.get("version." + s, ""))))

    ratios = {}
    refs = list(dict.fromkeys(ref_of(app) for app in apps))  # in the apps' order
    ref_text = REF if refs == [REF] else "the reference's (%s)" % ", ".join(
        "%s for %s" % (r, " ".join(a for a in apps if ref_of(a) == r)) for r in refs)
    lines += ["", "## req/s, latency, memory (c=16; hello-c64: c=64)", "",
              "ratio = geometric mean over rounds of (req/s ÷ %s req/s in the same round). "
              "Memory: all serving processes right after the point (RSS double-counts pages "
              "shared after fork; PSS splits them)." % ref_text, "",
              "| app | system | req/s per round | req/s mean | × %s | p50 ms | p99 ms | "
              "socket errors / non-2xx | procs | RSS MiB | PSS MiB |" % (REF if refs == [REF] else "ref"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    failures = {}  # (system, round, why) -> apps
    served = {(r["app"], r["system"]) for r in rows}
    for app in apps:
        ref = ref_of(app)
        for s in systems:
            if (app, s) not in served:
                continue  # a system that does not serve the app (node-hello, the WSGI apps)
            pts = [point.get((rnd, s, app)) for rnd in rounds]
            ok = [p for p in pts if p and p["status"] == "ok"]
            for rnd, p in zip(rounds, pts):
                if p and p["status"] != "ok":
                    failures.setdefault((s, rnd, p["note"]), []).append(app)
            per_round = " / ".join(fmt(num(p["rps"])) if p and p["status"] == "ok" else "failed"
                                   for p in pts)
            if not ok:
                why = next((p["note"] for p in pts if p), "not run")
                lines.append("| %s | %s | **FAILED**: %s | | | | | | | | |" % (app, s, cell(why[:160] + ("..." if len(why) > 160 else ""))))
                continue
            quotients = [rps(r, s, app) / rps(r, ref, app) for r in rounds
                         if rps(r, s, app) and rps(r, ref, app)]
            ratio = math.exp(sum(map(math.log, quotients)) / len(quotients)) if quotients else None
            ratios[(app, s)] = ratio
            errs = "%d / %d" % (sum(int(p["sock_errors"]) for p in ok), sum(int(p["non2xx"]) for p in ok))
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                app, s, per_round, fmt(mean(num(p["rps"]) for p in ok)),
                fmt(ratio, ".2f") if ratio else "n/a",
                fmt(mean(num(p["p50_ms"]) for p in ok), ".2f"),
                fmt(mean(num(p["p99_ms"]) for p in ok), ".2f"), errs,
                fmt(mean(num(p["procs"]) for p in ok), ".0f"),
                fmt(mean(num(p["rss_kib"]) / 1024 for p in ok), ".1f"),
                fmt(mean(num(p["pss_kib"]) / 1024 for p in ok), ".1f")))

    for ref in refs:
        ref_apps = [a for a in apps if ref_of(a) == ref]
        cols = [s for s in systems if any((a, s) in served for a in ref_apps)]
        lines += ["", "## Ratios to %s" % ref, "",
                  "| app | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for app in ref_apps:
            lines.append("| %s | %s |" % (app, " | ".join(
                fmt(ratios[(app, s)], ".2f") + "×" if ratios.get((app, s)) else
                ("failed" if any(p["status"] != "ok" for p in rows if p["system"] == s and p["app"] == app) else "n/a")
                for s in cols)))

    lines += cpu_table(out, systems, apps)
    lines += status_cost_lines(out)

    notes_path = os.path.join(out, "notes.txt")
    notes = open(notes_path).read().split("\n") if os.path.exists(notes_path) else []
    notes = [n for n in notes if n.strip()]
    if failures or notes:
        lines += ["", "## Failures and notes", ""]
        lines += ["- %s, round %d (%s): %s" % (s, rnd, " ".join(apps), why)
                  for (s, rnd, why), apps in failures.items()]
        lines += ["- " + n for n in notes]
    loads = [num(r["load1"]) for r in rows if r.get("load1")]
    if loads:
        lines += ["", "Load average (1 min) at the end of the points: %.2f to %.2f." % (min(loads), max(loads))]
    lines += ["", "Every point: `results.tsv`; wrk's full output and each system's logs: `raw/`, `logs/`."]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
