"""CPU of a process tree by kind of process, for CPU per request.

  proccpu.py sample PID...                 "kind:pid=ticks ..." for the pids and their
                                           descendants, now
  proccpu.py per-request BEFORE AFTER N    "kind=us ..." CPU microseconds per request
                                           between two samples, N requests

Kinds by the process's name: apache (Apache's parent and children), daemon
(mod_wsgi's daemon processes), lodged (node running lodged's main.js), worker
(python), passenger (its agents), uwsgi (uWSGI's master and workers), node (the
node processes that run a Node app: Lodge's node workers, proxynode's backend,
Passenger's "Passenger NodeApp" processes); any other name stands for itself. Each
process counts what it used between the two samples (all of it when it is new): one
that exited in between takes its CPU with it, so short-lived ones count less than
they cost, but never less than nothing (summed by kind, an Apache child that left
during the point would have made its kind's share negative).
"""
import os
import sys

from procmem import tree

TICK = os.sysconf("SC_CLK_TCK")


def kind(comm, argv):
    if comm.startswith("(wsgi") or comm.startswith("wsgi:"):
        return "daemon"
    if comm in ("apache2", "httpd"):
        return "apache"
    if comm == "node":
        # lodged and the app's node processes share the name; lodged is its main.js
        return "lodged" if any(a.endswith("/sidecar/src/main.js") for a in argv) else "node"
    if comm.startswith("Passenger NodeA"):  # the kernel's 15 bytes of Passenger's title
        return "node"
    if comm.startswith("python"):
        return "worker"
    if comm.lower().startswith("passenger"):
        return "passenger"
    if comm.startswith("uwsgi"):
        return "uwsgi"
    return comm


def sample(roots):
    out = {}
    for pid in tree(roots):
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue  # gone while we looked
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        argv = []
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().decode("latin1").split("\0")
            # mod_wsgi's display-name rewrites argv, not the kernel's comm
            if argv[0].startswith("(wsgi"):
                comm = argv[0]
        except OSError:
            pass
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        out["%s:%d" % (kind(comm, argv), pid)] = ticks
    return out


def parse(text):
    return {k: int(v) for k, v in (kv.split("=") for kv in text.split())}


def by_kind(before, after):
    """Ticks of each kind between the samples, process by process."""
    out = {}
    for key, ticks in after.items():
        k = key.rsplit(":", 1)[0]
        out[k] = out.get(k, 0) + max(0, ticks - before.get(key, 0))
    return out


def main(args):
    if args[:1] == ["sample"]:
        print(" ".join("%s=%d" % kv for kv in sorted(sample([int(a) for a in args[1:]]).items())))
    elif args[:1] == ["per-request"] and len(args) == 4:
        used, n = by_kind(parse(args[1]), parse(args[2])), int(args[3])
        print(" ".join("%s=%.0f" % (k, used[k] * 1e6 / TICK / n) for k in sorted(used) if n > 0))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
