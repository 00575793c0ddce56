"""An ASGI 3 app on the worker's one event loop. With lodged's lanes (asgi_lanes.py) it
serves a request per lane at once; on the path with the app's own socket (LISTEN_FD,
one lane) it runs in the request loop of serve.py, one request at a time. Between
requests the worker waits in the loop, so the app's own tasks keep running.

Each request's app call is a task of its own (run_app): when lodged sends ABORT (the
client left, or LodgeTimeout passed) or the lane ends, the app hears http.disconnect and
what is still running ABORT_CANCEL_S later is cancelled, so the lane answers END well
within ABORT_GRACE. receive() takes the request body from the lane as the app asks for
it (BODY frames are read on demand, so lodged and Apache are held back by a slow
reader), then waits for the client to leave; send() puts each body piece out at once
and returns once the socket took it. The lifespan scope (asgi_lifespan.py) runs before
READY."""

import asyncio
import signal
import socket

from . import serve
from .asgi_input import ClientGone, read_piece
from .asgi_lane import Lane
from .asgi_lanes import LaneServer
from .asgi_lifespan import Lifespan
from .asgi_run import run_app
from .asgi_scope import http_scope
from .asgi_websocket import is_tunnel, serve_websocket
from .channel import Gone
from .constants import ABORT
from .frames import BODY_END_HDR, END_FRAME, HDR
from .response import ContractError, Exchange, head_payload

DISCONNECT = {'type': 'http.disconnect'}
LAST_PIECE = {'type': 'http.request', 'body': b'', 'more_body': False}
_ABORT_HDR = (ABORT, 0)


class AsgiWorker(serve.Worker):
    _loop = None
    _lifespan = None

    @classmethod
    def startup(cls, sock, app, root, entry):
        """Before READY: the loop, made once for the worker's life, and the lifespan's
        startup (its failure is a FAIL: the worker exits)."""
        cls._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        cls._lifespan = Lifespan(app, loop).start(sock, root, entry)

    @staticmethod
    def connection(fd):
        # A lane sends with MSG_DONTWAIT and shuts its socket down: a socket object.
        return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fd)

    # A lane writes its socket itself, not through the channel's send: ACCEPTED goes
    # first, whatever the REQ's ticket.
    late_accept = False

    @classmethod
    def channel(cls, sock, direct=False):
        # fd 3 ends the worker when lodged closes it, as for WSGI, unless the lane server
        # takes it (serve() below).
        return Lane(sock, cls._loop, leaves=not direct, direct=direct)

    def __init__(self, *args, lanes=()):
        super().__init__(*args)
        self.loop = loop = self._loop
        ls = self._lifespan
        self.state = ls.state if ls is not None else None
        self.waking = None
        # lodged's lanes past fd 3 (sockets); the lane server serves them all at once.
        self.more_lanes = lanes
        self.server = None
        # SIGTERM through the loop: while the worker waits in it, the wait ends and the
        # serve loop leaves (running the lifespan's shutdown), as serve.on_term would.
        loop.add_signal_handler(signal.SIGTERM, self.on_term)

    def serve(self):
        if self.listener is not None and not self.more_lanes:
            return super().serve()
        board = self.board
        slots = None if board is None else board if isinstance(board, list) else [board]
        self.server = LaneServer(self, [self.lodged] + [self.channel(s) for s in self.more_lanes], self.listener, slots)
        self.server.run()

    def on_hangup(self):
        # With the lane server, fd 3's end closes lane 0 only (the hang-up watcher then
        # gives the rest LEAVE_GRACE seconds), and no more is taken from the app's socket.
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.shut_door)
        elif self.listener is not None:
            serve.on_term()

    def on_term(self):
        serve._term = True
        self.wake()
        if self.server is not None:
            self.server.stop()

    def wake(self):
        w = self.waking
        if w is not None and not w.done():
            w.set_result(None)

    def idle(self, listen_fd):
        """Waits in the loop for lodged's next frame or a connection on the app's socket;
        False when it ended without one (SIGTERM)."""
        loop = self.loop
        self.waking = loop.create_future()
        fds = (self.lodged.sock.fileno(),) if listen_fd is None else (self.lodged.sock.fileno(), listen_fd)
        for fd in fds:
            loop.add_reader(fd, self.wake)
        try:
            loop.run_until_complete(self.waking)
        finally:
            for fd in fds:
                loop.remove_reader(fd)
            self.waking = None
        return not serve._term

    def handle(self, env):
        """One request of serve.Worker's loop (the path with the app's own socket)."""
        ch = self.ch
        try:
            return self.loop.run_until_complete(self.request(ch, env))
        finally:
            # The loop's reader of the socket goes with the request: idle() waits on it
            # next, and a connection's socket is closed.
            ch.unwatch()

    async def request(self, ch, env):
        """Runs one request on ch; returns the status answered (0: none, the client gone)."""
        try:
            if 'HTTP_UPGRADE' in env and is_tunnel(env):
                return await serve_websocket(self, ch, env)
            return await self.http(ch, env)
        finally:
            # A lane's reader stays: the lane reads its next REQ in the loop.
            ch.busy = False
            ch.on_stop = ch.waiter = None

    async def http(self, ch, env):
        ex = Exchange(ch)
        call = Call(ch, ex, self.loop)
        e = await run_app(ch, self.loop, lambda: self.app(http_scope(env, self.state), call.receive, call.send),
                          call.on_abort)
        call.ch = None
        if e is not None:
            err = self.failed_on(ch, env, e)
        elif ex.head is None and not ch.aborted:
            err = self.broken(env, ContractError('the app returned without sending http.response.start'))
        else:
            err = None
        return await self.conclude(ch, env, ex, err)

    def failed_on(self, ch, env, e):
        return None if ch.aborted else self.fault(env, e)

    async def conclude(self, ch, env, ex, err):
        """serve.Worker.conclude on a lane: the rest of the body read (the loop waiting,
        not blocked), then END (the response whole, or the client gone) or ERROR."""
        if err is None and not ch.aborted:
            err = self.whole(env, ex)
        if not ch.done:
            try:
                await ch.drain_body()
            except Gone:
                pass   # the lane's peer closed: nothing more goes out
        if ch.aborted:
            ch.send(END_FRAME)
            status = 0
        elif err is None:
            ex.out.append(END_FRAME)
            ex.size += len(END_FRAME)
            ex.flush()
            status = ex.code
        else:
            ch.send(serve.error_frame(err))
            status = err[0]
        await ch.flushed()
        return status


class Call:
    """receive and send of one request."""

    __slots__ = ('ch', 'ex', 'loop', 'lock', 'started', 'full', 'body_over', 'over', 'waiter')

    def __init__(self, ch, ex, loop):
        self.ch = ch
        self.ex = ex
        self.loop = loop
        self.lock = None
        self.started = self.full = self.body_over = self.over = False
        self.waiter = None

    async def receive(self):
        ch = self.ch
        if ch is None or self.over or ch.aborted:
            return DISCONNECT
        if self.lock is None:
            self.lock = asyncio.Lock()
        # Two tasks of the app may wait at once (a body reader, a disconnect watcher):
        # one reads the channel at a time.
        async with self.lock:
            try:
                if not self.body_over:
                    return await self.body(ch)
                await self.disconnect(ch)
            except Gone:
                pass   # the direct connection closed: the client is gone
            return DISCONNECT

    def on_abort(self):
        """ABORT or the lane's end: a receive() waiting for the disconnect has it."""
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def body(self, ch):
        data = await read_piece(ch)
        if data is None:
            self.body_over = True
            return DISCONNECT if ch.aborted else LAST_PIECE
        if not ch.left and ch.end - ch.pos >= 8 and HDR.unpack_from(ch.buf, ch.pos) == BODY_END_HDR:
            # The end is in already: say so with the last piece, as a server should.
            ch.pos += 8
            ch.done = True
        more = not ch.done
        if not more:
            self.body_over = True
        return {'type': 'http.request', 'body': data, 'more_body': more}

    async def disconnect(self, ch):
        """Until the client leaves, or the response ends (ASGI: a receive() after the
        response is a disconnect)."""
        if ch.pos + 8 <= ch.end and HDR.unpack_from(ch.buf, ch.pos) == _ABORT_HDR:
            ch.pos += 8
            ch.done = ch.aborted = True
            ch.stopped()
            return
        # The lane's watcher looks for ABORT (Lane.on_readable); on_abort wakes us.
        fut = self.waiter = self.loop.create_future()
        ch.watch()
        try:
            await fut
        finally:
            self.waiter = None

    async def send(self, message):
        t = message.get('type')
        ex = self.ex
        if t == 'http.response.body':
            if not self.started:
                raise ContractError('http.response.body before http.response.start')
            if self.over:
                raise ContractError('http.response.body after the last one (more_body false)')
            ch = self.ch
            if ch is None or ch.poll_abort():
                raise ClientGone('client disconnected')
            body = message.get('body', b'')
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise ContractError('http.response.body: body is %s, not bytes' % type(body).__name__)
            if body and not self.full:
                # Past the app's Content-Length nothing more goes out (as for WSGI).
                self.full = ex.emit(body)
            if message.get('more_body', False):
                # A piece of a stream: out now, HEAD first, not held for the next one.
                ex.queue_head()
                ex.flush()
                # Back-pressure: the app goes on once the lane took the piece.
                await ch.flushed()
            else:
                # The last piece: it goes out with END (serve.Worker.finish), in one write.
                self.over = True
                w = self.waiter
                if w is not None and not w.done():
                    w.set_result(None)
        elif t == 'http.response.start':
            if self.started:
                raise ContractError('http.response.start sent twice')
            status = message.get('status')
            if type(status) is not int or not 100 <= status <= 599:
                raise ContractError('http.response.start: status %.80r is not an int in 100-599' % (status,))
            headers = []
            for h in message.get('headers', ()):
                try:
                    name, value = h
                except (TypeError, ValueError):
                    raise ContractError('response header %.80r is not a (name, value) pair' % (h,)) from None
                if not isinstance(name, bytes) or not isinstance(value, bytes):
                    raise ContractError('response header %.80r: name and value must be bytes' % (h,))
                headers.append((name.decode('latin-1'), value.decode('latin-1')))
            ex.code, ex.head, ex.left = head_payload('%d ASGI' % status, headers)
            self.started = True
        else:
            raise ContractError('unexpected ASGI message %.80r in an http scope' % (t,))
