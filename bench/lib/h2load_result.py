"""h2load's report (on stdin) as run.sh's BENCH line, the one wrk.lua prints.

h2load gives no percentiles, only min, max, mean and sd of each request's time: the
line carries the mean and the max (mean_us, max_us) and leaves the percentiles out.
Requests are the succeeded ones; socket errors are the failed, errored and timed-out
ones; non-2xx from its status codes line. No line at all when the report has none of
that (h2load could not connect): run.sh says so.
"""
import re
import sys

UNITS = {"us": 1, "ms": 1000, "s": 1000000}


def us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    return round(float(m.group(1)) * UNITS[m.group(2)]) if m else None


def main():
    text = sys.stdin.read()
    fin = re.search(r"finished in ([0-9.]+)s, ([0-9.]+) req/s", text)
    req = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    times = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if not (fin and req and codes):
        return 1
    succeeded = int(req.group(2))
    seconds = float(fin.group(1))
    non2xx = sum(int(codes.group(i)) for i in (2, 3, 4))
    out = ["BENCH", "requests=%d" % succeeded, "rps=%.2f" % (succeeded / seconds if seconds else 0)]
    if times:
        out += ["mean_us=%s" % us(times.group(3)), "max_us=%s" % us(times.group(2))]
    out += ["sock_errors=%d" % sum(int(req.group(i)) for i in (3, 4, 5)), "non2xx=%d" % non2xx]
    print(" ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
