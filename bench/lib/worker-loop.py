"""The WSGI worker's request loop alone: the real serve.Worker (with its C part and a
scoreboard slot) accepting on a real unix socket, a client process connecting as
mod_lodge does and sending a hello REQ (the pairs mod_lodge sends for GET /hello, as
captured from it), eight connections at a time so that one is usually waiting, as under
load. Prints the worker's CPU microseconds per request (getrusage, after a warm-up).

    python3 bench/lib/worker-loop.py [-n REQUESTS] [--python-board] [--no-board] [--floor]

--python-board  the slot written by scoreboard.py's closures instead of SlotWriter
--no-board      no slot at all
--floor         not Lodge's loop: the least a Python loop does for the same bytes
                (accept, one read, the C environ, the app, one write, close), the
                reference the loop's own cost is read against

For comparing changes to the runtime (RUNTIME=dir of another copy of sidecar/runtimes):
run the two alternately, several times; single runs vary by ~5 %. Not a test: it
asserts nothing. docs/hot-path.md has what it measured.
"""
import argparse
import os
import resource
import signal
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNTIME = os.environ.get('RUNTIME', os.path.join(REPO, 'sidecar', 'runtimes'))
sys.path[:0] = [RUNTIME, os.path.join(REPO, 'build', 'python'), os.path.join(REPO, 'bench', 'apps')]

from _lodge_runtime import scoreboard, serve  # noqa: E402
from _lodge_runtime.frames import HDR, pairs  # noqa: E402
from wsgi_entry import application  # noqa: E402

WARM = 3000
BATCH = 8

# What mod_lodge sends for `GET /hello` (2.4, the bench's tenant), in its order.
HELLO = [
    ('GATEWAY_INTERFACE', 'CGI/1.1'), ('REQUEST_METHOD', 'GET'), ('SCRIPT_NAME', ''),
    ('PATH_INFO', '/hello'), ('QUERY_STRING', ''), ('SERVER_SOFTWARE', 'Apache'),
    ('SERVER_SIGNATURE', ''), ('SERVER_ADMIN', '[no address given]'),
    ('SERVER_NAME', 'bench.localhost'), ('SERVER_ADDR', '127.0.0.1'), ('SERVER_PORT', '80'),
    ('SERVER_PROTOCOL', 'HTTP/1.1'), ('REQUEST_SCHEME', 'http'), ('REMOTE_ADDR', '127.0.0.1'),
    ('REMOTE_PORT', '38992'), ('REQUEST_URI', '/hello'), ('DOCUMENT_ROOT', '/srv/bench'),
    ('CONTEXT_PREFIX', ''), ('CONTEXT_DOCUMENT_ROOT', '/srv/bench'),
    ('SCRIPT_FILENAME', '/srv/bench/wsgi_entry.py'), ('HTTP_HOST', 'bench.localhost'),
    ('HTTP_ACCEPT', '*/*'), ('HTTP_USER_AGENT', 'wrk'),
]
REQ, BODY_END, ACCEPTED, HEAD, DATA, END = 0x02, 0x04, 0x16, 0x10, 0x11, 0x12


def hello_req(ticket=0x5a12):
    payload = pairs(*[x.encode('latin-1') for kv in HELLO for x in kv])
    head = bytearray(HDR.pack(REQ, len(payload)))
    head[1:4] = ticket.to_bytes(3, 'big')
    return bytes(head) + payload + HDR.pack(BODY_END, 0)


def board_file(path):
    b = bytearray(scoreboard.HEADER_SIZE + 64 + scoreboard.SLOT_SIZE)
    b[0:8] = scoreboard.MAGIC
    for name, v in (('version', 1), ('headerSize', 64), ('slotCount', 1),
                    ('slotSize', scoreboard.SLOT_SIZE), ('seqOffset', 64), ('slotsOffset', 128),
                    ('pathMax', scoreboard.PATH_MAX), ('promBuckets', scoreboard.PROM_BUCKETS),
                    ('fineBuckets', scoreboard.FINE_BUCKETS)):
        b[scoreboard.HDR[name]:scoreboard.HDR[name] + 4] = v.to_bytes(4, 'little')
    with open(path, 'wb') as f:
        f.write(b)


def client(path, req, n, parent):
    for i in range(0, n + WARM, BATCH):
        if i == WARM:
            os.kill(parent, signal.SIGUSR2)
            time.sleep(0.05)
        socks = []
        for _ in range(BATCH):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(req)
            socks.append(s)
        for s in socks:
            while s.recv(65536):
                pass
            s.close()
    os.kill(parent, signal.SIGUSR1)


def floor_loop(listener):
    """The least a Python loop does for a hello REQ: see the module's doc."""
    from _lodge_speedups import environ
    import select
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    buf = bytearray(65536)
    mv = memoryview(buf)
    base = {'wsgi.version': (1, 0)}
    accepted = HDR.pack(ACCEPTED, 4) + os.getpid().to_bytes(4, 'big')
    end = HDR.pack(END, 0)
    while True:
        try:
            fd, _ = listener._accept()
        except BlockingIOError:
            ep.poll()
            continue
        os.readv(fd, (mv,))
        _, n = HDR.unpack_from(buf, 0)
        env = environ(base, mv[8:8 + n])
        got = []
        body = application(env, lambda status, headers, exc=None: got.append((status, headers)))
        status, headers = got[0]
        head = int(status[:3]).to_bytes(2, 'big') + b''.join(
            struct.pack('>H', len(k)) + k.encode() + struct.pack('>I', len(v)) + v.encode() for k, v in headers)
        out = [accepted, HDR.pack(HEAD, len(head)), head]
        for chunk in body:
            out += (HDR.pack(DATA, len(chunk)), chunk)
        out.append(end)
        os.write(fd, b''.join(out))
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-n', type=int, default=40000, help='requests measured (default 40000)')
    ap.add_argument('--python-board', action='store_true')
    ap.add_argument('--no-board', action='store_true')
    ap.add_argument('--floor', action='store_true')
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix='lodge-worker-loop-')
    path = os.path.join(work, 'app.sock')
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(128)
    listener.setblocking(False)
    parent = os.getpid()
    if os.fork() == 0:
        listener.close()
        client(path, hello_req(), args.n, parent)
        os._exit(0)

    start = []

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def warm(*_):
        start.append(cpu())

    def done(*_):
        us = (cpu() - start[0]) * 1e6 / args.n
        what = 'floor' if args.floor else 'python board' if args.python_board else 'no board' if args.no_board else 'worker'
        print('%s: %.2f us of CPU a request (%d requests)' % (what, us, args.n))
        os.unlink(path)
        os._exit(0)

    signal.signal(signal.SIGUSR2, warm)
    signal.signal(signal.SIGUSR1, done)
    if args.floor:
        floor_loop(listener)
    board = None
    if not args.no_board:
        board_file(os.path.join(work, 'board'))
        writer = None if args.python_board else scoreboard.SlotWriter
        board = scoreboard.Slot(scoreboard._map(os.path.join(work, 'board')), 0, writer=writer)
        board.claim(os.getpid(), 0)
        board.set_state(scoreboard.IDLE)
    lodged, _ = socket.socketpair()   # lodged's channel: nothing comes on it
    serve._ch = ch = serve.Worker.channel(lodged)
    serve.Worker(ch, application, work, 'wsgi_entry.py', listener, board).serve()


if __name__ == '__main__':
    main()
