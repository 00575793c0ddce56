"""The worker process: exit, the tenant's log, FAIL before the first request, and the
set-up done before the app is loaded (log, hang-up watcher). Cgroups and the drop to the
tenant happened before exec, in lodge-spawn."""

import os
import select
import sys
import threading
import time

from .constants import FAIL, MESSAGE_TEXT_MAX, WORKER_EXIT_FAIL, WORKER_EXIT_PROTOCOL
from .frames import frame

# On WORKER_EXIT_PROTOCOL lodged replaces the worker; on WORKER_EXIT_FAIL (the app
# cannot be loaded) it backs off and shows FAIL's message.

# Seconds a worker whose lodged hung up has to finish the request it holds: the
# default LodgeTimeout, since no watchdog of lodged's can stop it any more.
LEAVE_GRACE = 30

# Seconds the hang-up watcher gives the main thread to run before_leave (an ASGI app's
# lifespan shutdown, itself bounded to 5 s) after the same hang-up.
HOOK_GRACE = 6

_errlog = None   # the tenant's log, kept apart from sys.stderr, which the app may replace

# What the app wants done when its worker leaves of its own accord (told to, idle): an
# ASGI app's lifespan shutdown. Run once, in the main thread, which holds the app's loop.
before_leave = None


def _exit(code):
    # os._exit, not sys.exit: a tenant's non-daemon thread or atexit hook must not keep
    # a worker alive that lodged considers gone.
    for f in (sys.stdout, sys.stderr, _errlog):
        if f is None:
            continue
        try:
            f.flush()
        except Exception:
            pass   # closed or replaced by the app, or the log's disk is full: exit anyway
    os._exit(code)


def leave():
    """Exit 0, the way a worker leaves when told to: before_leave first, when there is one."""
    global before_leave
    hook = before_leave
    if hook is not None:
        if threading.current_thread() is not threading.main_thread():
            # The hang-up watcher: the main thread sees the same hang-up and runs the hook.
            time.sleep(HOOK_GRACE)
        else:
            before_leave = None
            try:
                hook()
            except BaseException as e:
                log('while leaving: %s: %s' % (type(e).__name__, e))
    _exit(0)


# Which runtime this is, in the log lines' tag: the entry sets it.
kind = 'wsgi'


def log(msg):
    stamp = time.strftime('%Y-%m-%d %H:%M:%S')
    (_errlog or sys.stderr).write('[%s] [lodge %s %d] %s\n' % (stamp, kind, os.getpid(), msg))


def protocol_error(msg):
    try:
        log('protocol error from lodged: %s; exiting' % msg)
    finally:
        _exit(WORKER_EXIT_PROTOCOL)


def fail(sock, msg, code=WORKER_EXIT_FAIL):
    """Tell lodged why the app cannot run, then exit."""
    try:
        log('cannot start: %s' % msg)
    except Exception:
        pass   # no log yet (fd 2 closed): FAIL below still carries the message
    try:
        sock.sendall(frame(FAIL, msg.encode('utf-8', 'replace')[:MESSAGE_TEXT_MAX]))
    except OSError:
        pass   # lodged is gone: the exit status is all that is left to say
    _exit(code)


def open_log(path):
    global _errlog
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent) and os.path.isdir(os.path.dirname(parent) or '.'):
        try:
            os.mkdir(parent, 0o750)
        except FileExistsError:
            pass
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o640)
    # Tenant prints and tracebacks land in the tenant's log; fd 1 never carries protocol.
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Line-buffered, so that a print() is in the log when a watchdog kills the worker.
    text = dict(encoding='utf-8', errors='backslashreplace', buffering=1, closefd=False)
    sys.stdout = open(1, 'w', **text)
    sys.stderr = _errlog = open(2, 'w', **text)


def watch_hangup(fd, leave):
    # The main thread only sees lodged's end of fd 3 close when it next reads, which a
    # long request may put off for minutes; this thread sleeps in poll() until then, so it
    # costs the request loop nothing. leave() ends the worker at once when it is idle,
    # else after its request: one that came straight from Apache (the app's own
    # socket) is answered even when lodged is gone.
    # Nobody watches a request once lodged is gone: it has LEAVE_GRACE seconds.
    p = select.poll()
    p.register(fd, select.POLLRDHUP)
    while True:
        for _, ev in p.poll():
            if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                leave()
                time.sleep(LEAVE_GRACE)
                _exit(0)
