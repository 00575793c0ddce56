"""The worker process: exit, the tenant's log, FAIL before the first request, and the
set-up done before the app is loaded (arguments, cgroups, privilege drop, log, hang-up
watcher)."""

import os
import select
import sys
import time

from .frames import FAIL, frame

EXIT_PROTOCOL = 2   # lodged replaces the worker
EXIT_FAIL = 3       # the app cannot be loaded: lodged backs off and shows FAIL's message

_errlog = None   # the tenant's log, kept apart from sys.stderr, which the app may replace


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


def log(msg):
    stamp = time.strftime('%Y-%m-%d %H:%M:%S')
    (_errlog or sys.stderr).write('[%s] [lodge wsgi %d] %s\n' % (stamp, os.getpid(), msg))


def protocol_error(msg):
    try:
        log('protocol error from lodged: %s; exiting' % msg)
    finally:
        _exit(EXIT_PROTOCOL)


def fail(sock, msg, code=EXIT_FAIL):
    """Tell lodged why the app cannot run, then exit."""
    try:
        log('cannot start: %s' % msg)
    except Exception:
        pass   # no log yet (fd 2 closed): FAIL below still carries the message
    try:
        sock.sendall(frame(FAIL, msg.encode('utf-8', 'replace')[:4000]))
    except OSError:
        pass   # lodged is gone: the exit status is all that is left to say
    _exit(code)


def parse_args(argv):
    opts = {}
    known = ('--root', '--entry', '--callable', '--uid', '--gid', '--log', '--cgroup')
    i = 0
    while i < len(argv):
        a = argv[i]
        if '=' in a and a.split('=', 1)[0] in known:
            a, v = a.split('=', 1)
            i += 1
        elif a in known and i + 1 < len(argv):
            v = argv[i + 1]
            i += 2
        else:
            raise ValueError('unexpected argument %r' % a)
        if a == '--cgroup':
            opts.setdefault('cgroup', []).append(v)
            continue
        opts[a[2:]] = v
    for k in ('root', 'entry', 'log'):
        if not opts.get(k):
            raise ValueError('--%s is required' % k)
    if ('uid' in opts) != ('gid' in opts):
        raise ValueError('--uid and --gid go together')
    for k in ('uid', 'gid'):
        if k in opts:
            if not opts[k].isdigit():
                raise ValueError('--%s takes a number, not %r' % (k, opts[k]))
            opts[k] = int(opts[k])
    return opts


def join_cgroups(dirs):
    # First of all, still as root: whatever the app starts is born inside the worker's
    # groups, where lodged's limits hold and its kill finds it.
    for d in dirs:
        with open(os.path.join(d, 'cgroup.procs'), 'w') as f:
            f.write(str(os.getpid()))


def drop_privileges(uid, gid):
    import pwd
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        pw = None
    groups = os.getgrouplist(pw.pw_name, gid) if pw else [gid]
    # Groups first, then gid, then uid: once uid is dropped the others cannot be changed.
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass   # as it must: root is gone for good
    else:
        raise OSError('could regain root after setuid(%d)' % uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError('uid/gid are %r/%r after dropping to %d/%d'
                      % (os.getresuid(), os.getresgid(), uid, gid))
    if pw:
        for k, v in (('HOME', pw.pw_dir), ('USER', pw.pw_name), ('LOGNAME', pw.pw_name)):
            os.environ.setdefault(k, v)


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


def watch_hangup(fd):
    # The main thread only sees lodged's end of fd 3 close when it next reads, which a
    # long request may put off for minutes; this thread sleeps in poll() until then, so it
    # costs the request loop nothing.
    p = select.poll()
    p.register(fd, select.POLLRDHUP)
    while True:
        for _, ev in p.poll():
            if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                _exit(0)
