"""Memory of a process tree: procmem.py PID... prints "procs rss_kib pss_kib" summed
over the given pids and all their descendants (Apache's parent and children, the
backends' daemons and workers). RSS counts pages shared after fork once per process;
PSS divides them among the sharers, so the PSS sum is what the tree really costs.
With -v, one line per process goes to stderr."""
import os
import sys


def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:  # the process exited while we looked: it costs nothing now
        pass
    return 0


def parents():
    """pid -> ppid for every process now."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def tree(roots):
    children = {}
    for pid, ppid in parents().items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return sorted(seen)


def main(args):
    verbose = "-v" in args
    roots = [int(a) for a in args if a.isdigit()]
    procs = rss = pss = 0
    for pid in tree(roots):
        r = field("/proc/%d/status" % pid, "VmRSS:")
        p = field("/proc/%d/smaps_rollup" % pid, "Pss:")
        if r == 0 and p == 0:
            continue  # gone, or a zombie
        procs, rss, pss = procs + 1, rss + r, pss + p
        if verbose:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = "?"
            sys.stderr.write("%8d rss %7d KiB pss %7d KiB  %s\n" % (pid, r, p, cmd[:100]))
    print(procs, rss, pss)


if __name__ == "__main__":
    main(sys.argv[1:])
