"""Lodge WSGI worker: hosts one tenant's WSGI application (PEP 3333), one request at a
time, speaking the frame protocol of sidecar/src/protocol/PROTOCOL.md on fd 3.

    python3 -I wsgi_worker.py --root DIR --entry FILE [--callable NAME]
                              [--uid N --gid N] --log FILE

Standard library only. This file ties together the modules of _lodge_runtime/ (see its
__init__.py for which holds what).
"""

import os
import signal
import socket
import sys
import threading
# Needed only when an app fails, by then as the tenant, who may not be able to read the
# interpreter's library (a Python under root's home, say): imported now, while root.
import traceback  # noqa: F401

# -I leaves this file's directory off sys.path. It goes in front, so that nothing else on
# the path can stand in for _lodge_runtime, and out again once the package is imported:
# the tenant's sys.path stays what it was. Every module of ours is imported here, still as
# root and before the app's directory is on sys.path, so the app can neither shadow nor
# replace one; after the privilege drop the files are only read again for tracebacks.
# No bytecode cache: root is not to write into the install tree, and the one-file worker
# was compiled from source at every start too.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here)
_dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
try:
    from _lodge_runtime import serve
    from _lodge_runtime.channel import Channel
    from _lodge_runtime.frames import PROTO_FD, READY, frame, pairs
    from _lodge_runtime.loader import describe, load_app, own_modules, print_exception
    from _lodge_runtime.process import (EXIT_PROTOCOL, _exit, drop_privileges, fail,
                                        join_cgroups, log, open_log, parse_args,
                                        watch_hangup)
finally:
    sys.dont_write_bytecode = _dont_write
    sys.path.remove(_here)


def main():
    try:
        sock = socket.socket(fileno=PROTO_FD)
    except OSError as e:
        sys.stderr.write('lodge wsgi worker: fd %d is not a socket (%s)\n' % (PROTO_FD, e))
        _exit(EXIT_PROTOCOL)
    sock.setblocking(True)
    # Programs the tenant runs must not inherit the channel to lodged.
    os.set_inheritable(PROTO_FD, False)
    try:
        opts = parse_args(sys.argv[1:])
    except ValueError as e:
        fail(sock, 'worker arguments: %s' % e)
    root, entry = opts['root'], opts['entry']
    if os.path.isabs(entry) or '..' in entry.split('/'):
        fail(sock, '%s: the app file must be inside the app directory' % entry)

    try:
        join_cgroups(opts.get('cgroup', ()))
        if os.geteuid() == 0:
            uid = opts.get('uid')
            if not uid or not opts.get('gid'):
                fail(sock, '%s: refusing to run application code as root '
                           '(no --uid/--gid, or 0)' % entry)
            drop_privileges(uid, opts['gid'])
        elif 'uid' in opts and opts['uid'] != os.getuid():
            fail(sock, '%s: cannot run as uid %d: the worker was not started as root'
                 % (entry, opts['uid']))
        os.chdir(root)
    except OSError as e:
        fail(sock, '%s: cannot start: %s' % (entry, e))
    try:
        open_log(opts['log'])
    except OSError as e:
        fail(sock, '%s: cannot open the log %s: %s' % (entry, opts['log'], e.strerror or e))

    signal.signal(signal.SIGTERM, serve.on_term)
    root = os.getcwd()
    sys.path.insert(0, root)
    sys.argv = [os.path.join(root, entry)]
    try:
        app, why = load_app(root, entry, opts.get('callable'))
    except BaseException as e:
        log('cannot load %s:' % entry)
        print_exception(e)
        fail(sock, describe(e, root + '/', entry))
    if app is None:
        fail(sock, why)

    serve._ch = ch = Channel(sock)
    try:
        sock.sendall(frame(READY, pairs(b'pid', str(os.getpid()).encode(), *own_modules(root))))
    except OSError:
        _exit(0)
    threading.Thread(target=watch_hangup, args=(PROTO_FD,), name='lodge-hangup',
                     daemon=True).start()
    serve.Worker(ch, app, root, entry).serve()


if __name__ == '__main__':
    main()
