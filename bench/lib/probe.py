"""HTTP probes for run.sh, on 127.0.0.1 only.

  probe.py wait  PORT HOST PATH SECONDS [PID]   until PATH answers 200 (or PID exits)
  probe.py check PORT HOST APP...               every app answers the exact bytes

check sends the requests the bench measures and compares status, Content-Type,
Content-Length and body with what the apps in bench/apps must send; the first
difference is printed ("flask: Content-Type: wanted 'application/json', got ...")
and the exit status is 1.
"""
import http.client
import os
import sys
import time

MIB = 1024 * 1024

# app -> (method, path, request body, content type, response body)
EXPECTED = {
    "hello": ("GET", "/hello", None, "text/plain", b"Hello, world!\n"),
    "flask": ("GET", "/flask/", None, "application/json",
              b'{"message":"Hello, world!","ok":true}\n'),
    "stream": ("GET", "/stream", None, "application/octet-stream", b"x" * MIB),
    "upload": ("POST", "/upload", b"u" * MIB, "text/plain", b"%d\n" % MIB),
    # apps/node/server.js: hello's bytes, from Node
    "hello-h2": ("GET", "/hello", None, "text/plain", b"Hello, world!\n"),   # hello; measured over h2c
    "hello-c64": ("GET", "/hello", None, "text/plain", b"Hello, world!\n"),  # hello; 64 connections
    "node-hello": ("GET", "/hello", None, "text/plain", b"Hello, world!\n"),
    "asgi-hello": ("GET", "/hello", None, "text/plain", b"Hello, world!\n"),
}


def short(data, limit=80):
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "... (%d bytes)" % len(data)


def request(conn, host, method, path, body=None):
    headers = {"Host": host}
    if body is not None:
        headers["Content-Type"] = "application/octet-stream"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp, resp.read()


def check_app(conn, host, app):
    method, path, body, ctype, want = EXPECTED[app]
    resp, got = request(conn, host, method, path, body)
    if resp.status != 200:
        return "%s %s: wanted 200, got %d %s, body %s" % (method, path, resp.status, resp.reason, short(got))
    have_type = (resp.getheader("Content-Type") or "").split(";")[0].strip()
    if have_type != ctype:
        return "%s: Content-Type: wanted %r, got %r" % (path, ctype, have_type)
    length = resp.getheader("Content-Length")
    if length != str(len(want)):
        return "%s: Content-Length: wanted %d, got %r" % (path, len(want), length)
    if got != want:
        return "%s: body: wanted %s, got %s" % (path, short(want), short(got))
    return None


def check(port, host, apps):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        for app in apps:
            if app not in EXPECTED:
                return "unknown app %r (known: %s)" % (app, " ".join(EXPECTED))
            try:
                wrong = check_app(conn, host, app)
            except (OSError, http.client.HTTPException) as err:
                wrong = "%s: %s: %s" % (EXPECTED[app][1], type(err).__name__, err)
            if wrong:
                return "%s: %s" % (app, wrong)
    finally:
        conn.close()
    return None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def wait(port, host, path, seconds, pid=None):
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        if pid and not alive(pid):
            return "process %d exited (last: %s)" % (pid, last)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            resp, _ = request(conn, host, "GET", path)
            if resp.status == 200:
                return None
            last = "%d %s" % (resp.status, resp.reason)
        except (OSError, http.client.HTTPException) as err:
            last = "%s: %s" % (type(err).__name__, err)
        finally:
            conn.close()
        time.sleep(0.1)
    return "%s did not answer 200 within %d s (last: %s)" % (path, seconds, last)


def main(argv):
    if len(argv) >= 6 and argv[1] == "wait":
        pid = int(argv[6]) if len(argv) > 6 else None
        wrong = wait(int(argv[2]), argv[3], argv[4], int(argv[5]), pid)
    elif len(argv) >= 4 and argv[1] == "check":
        wrong = check(int(argv[2]), argv[3], argv[4:])
    else:
        sys.stderr.write(__doc__)
        return 2
    if wrong:
        print(wrong)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
