"""What both Python entries do (wsgi_worker.py, asgi_worker.py): read START, become the
app's process (environment, directory, log), load the app, say READY or FAIL, and serve.
The two differ only in the Worker they serve with: serve.Worker (WSGI) or
asgi_serve.AsgiWorker, whose startup() (the lifespan scope) runs before READY."""

import os
import signal
import socket
import sys
import threading

from . import process, serve
from .constants import BOARD_FD, LANE_FD_FIRST, LISTEN_FD, READY, WORKER_EXIT_PROTOCOL, WORKER_FD
from .frames import frame, pairs
from .scoreboard import IDLE, Scoreboard, ScoreboardError
from .loader import describe, load_app, own_modules, print_exception
from .process import _exit, fail, log, open_log, protocol_error, watch_hangup
from .start import apply_env, read_start


def main(kind, Worker):
    process.kind = kind
    try:
        sock = socket.socket(fileno=WORKER_FD)
    except OSError as e:
        sys.stderr.write('lodge %s worker: fd %d is not a socket (%s)\n' % (kind, WORKER_FD, e))
        _exit(WORKER_EXIT_PROTOCOL)
    sock.setblocking(True)
    # Programs the tenant runs must not inherit the channel to lodged.
    os.set_inheritable(WORKER_FD, False)
    listener = app_socket()
    opts, env = read_start(sock)
    lanes = lane_sockets(kind, opts['lanes'])
    root, entry = opts['root'], opts['entry']
    if os.path.isabs(entry) or '..' in entry.split('/'):
        fail(sock, '%s: the app file must be inside the app directory' % entry)
    if os.geteuid() == 0 or os.getegid() == 0:
        # lodge-spawn makes the tenant before exec; a runtime started any other way
        # as root must not load anybody's code.
        fail(sock, '%s: refusing to run application code as root' % entry)
    apply_env(env)
    try:
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
        app, why = load_app(root, entry, opts.get('callable'), kind)
    except BaseException as e:
        log('cannot load %s:' % entry)
        print_exception(e)
        fail(sock, describe(e, root + '/', entry))
    if app is None:
        fail(sock, why)

    # Before READY, so that an app whose startup fails is a FAIL, as one that will not import.
    startup = getattr(Worker, 'startup', None)
    if startup is not None:
        startup(sock, app, root, entry)
    serve._ch = ch = Worker.channel(sock)
    try:
        # accepts: it serves the app's socket, so lodged may send mod_lodge there.
        accepts = (b'accepts', b'1') if listener is not None else ()
        sock.sendall(frame(READY, pairs(b'pid', str(os.getpid()).encode(), *accepts, *own_modules(root))))
    except OSError:
        _exit(0)
    board = app_board(opts, listener, opts['lanes'])
    worker = Worker(ch, app, root, entry, listener, board, **({'lanes': lanes} if lanes else {}))
    threading.Thread(target=watch_hangup, args=(WORKER_FD, worker.on_hangup), name='lodge-hangup',
                     daemon=True).start()
    worker.serve()


def lane_sockets(kind, n):
    """The sockets of lanes 1..n-1 (PROTOCOL.md, "Lanes"): fds LANE_FD_FIRST on. A WSGI
    worker has one lane."""
    if n == 1:
        return []
    if kind == 'wsgi':
        protocol_error('START: lanes %d for a WSGI worker, which serves one request at a time' % n)
    socks = []
    for fd in range(LANE_FD_FIRST, LANE_FD_FIRST + n - 1):
        try:
            s = socket.socket(fileno=fd)
        except OSError as e:
            protocol_error('START: lanes %d, but fd %d is not a socket (%s)' % (n, fd, e))
        s.setblocking(True)
        # As fd 3: not for the programs the tenant runs.
        os.set_inheritable(fd, False)
        socks.append(s)
    return socks


def app_board(opts, listener, lanes=1):
    """This worker's slot of the app's scoreboard (BOARD_FD), where the requests it takes
    straight from Apache are counted for lodged (a list of one per lane for a worker with
    several); None without the app's own socket."""
    if listener is None or 'slot' not in opts:
        return None
    try:
        slots = Scoreboard.open_block(BOARD_FD, int(opts['slot']), lanes)
    except (OSError, ValueError, ScoreboardError) as e:
        log('no scoreboard (%s): requests from the app\'s socket go uncounted' % e)
        return None
    for slot in slots:
        slot.claim(os.getpid(), 0)
        slot.set_state(IDLE)
    return slots[0] if lanes == 1 else slots


def app_socket():
    """The app's listening socket on LISTEN_FD, when lodged passed one; else None."""
    try:
        listener = socket.socket(fileno=LISTEN_FD)
    except OSError:
        return None
    os.set_inheritable(LISTEN_FD, False)
    # Shared by every worker of the app: the one that loses the race for a connection
    # must go back to waiting, not block in accept().
    listener.setblocking(False)
    return listener
