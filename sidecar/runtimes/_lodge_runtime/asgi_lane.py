"""A lane (PROTOCOL.md, "Lanes"): a frame stream the ASGI worker's event loop reads and
writes without ever blocking in it, so that a slow client on one lane holds up no other.

The socket itself stays blocking, for the synchronous reader of serve.Worker (the path
with the app's own socket, one request at a time): every read and write here is
MSG_DONTWAIT. A write the socket will not take whole is held and finished as it drains;
the request's coroutine waits for that (flushed()) before it goes on, which is the
back-pressure a slow reader puts on the app. While a request runs and the app is not
reading, the loop still watches the socket for ABORT and end of file (on_readable)."""

import collections
import itertools
import mmap
import socket

from .channel import Channel, Gone
from .constants import READ_AHEAD
from .frames import IOV_BATCH
from .process import leave

DONTWAIT = socket.MSG_DONTWAIT


class Lane(Channel):
    __slots__ = ('loop', 'leaves', 'waiter', 'watching', 'busy', 'on_stop', 'closing',
                 'pending', 'writing', 'drained')

    def __init__(self, sock, loop, leaves=False, direct=False):
        self.loop = loop
        # lodged's fd 3 on the path with the app's own socket: its end ends the worker,
        # as for WSGI. A lane of the lane server only closes (asgi_lanes.py).
        self.leaves = leaves
        self.waiter = None      # the future of whoever waits for input
        self.watching = False   # on_readable is the loop's reader of the socket
        self.busy = False       # a request is in hand
        self.on_stop = None     # the request's: on_stop(cancel) once ABORT or end of file is seen
        self.closing = False    # an idle lane told to close (SIGTERM): its wait ends
        self.pending = collections.deque()   # what the socket has not taken yet
        self.writing = False    # push is the loop's writer of the socket
        self.drained = []       # the futures of those who wait for pending to go out
        super().__init__(sock, direct)

    def fresh_buffer(self):
        # Anonymous memory, untouched until read into: a worker with 64 lanes does not
        # hold 64 read-ahead buffers (32 MiB) for requests that are mostly small.
        return mmap.mmap(-1, READ_AHEAD)

    def hang_up(self):
        if self.leaves:
            leave()
        self.gone = self.done = self.aborted = True
        self.pending.clear()
        self.stop_writing()
        # The request in hand finishes (PROTOCOL.md, "Lanes"): told, its writes failing.
        # On a connection from the app's socket the end is mod_lodge's (the client left, or
        # LodgeTimeout passed): as after ABORT, the request is cancelled if it will not stop.
        self.stopped(cancel=self.direct)

    def stopped(self, cancel=True):
        """ABORT or the end of file came, whoever read it: the request in hand is to stop
        (after ABORT, cancelled if it will not)."""
        f = self.on_stop
        if f is not None:
            self.on_stop = None
            f(cancel)

    # -- input --

    def poll_abort(self):
        if self.aborted:
            return True
        if super().poll_abort():
            self.stopped()
            return True
        return False

    def body_frame(self, t, n):
        super().body_frame(t, n)
        if self.aborted:
            self.stopped()

    def watch(self):
        if not self.watching:
            self.watching = True
            self.loop.add_reader(self.sock.fileno(), self.on_readable)

    def unwatch(self):
        if self.watching:
            self.watching = False
            self.loop.remove_reader(self.sock.fileno())

    def on_readable(self):
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)
                return
        if not self.busy or self.aborted:
            self.unwatch()   # the next read asks again
        elif self.poll_abort():
            self.unwatch()   # stopped() told the request
        elif self.end == len(self.buf):
            # Full of body the app has not read: nothing more can be looked at until it
            # reads (or lodged, seeing no END, gives up on the worker).
            self.unwatch()

    async def readable(self):
        fut = self.waiter = self.loop.create_future()
        self.watch()
        await fut

    async def recv_some(self):
        """At least one more byte into the buffer (there is room at end); Gone at its end."""
        while True:
            if self.closing:
                raise Gone('the lane is closing')
            try:
                return self.recv(DONTWAIT)
            except BlockingIOError:
                await self.readable()

    async def fill(self, n):
        """Until n bytes are buffered at pos."""
        self.room(n)
        while self.end - self.pos < n:
            await self.recv_some()

    async def next_body(self):
        """Channel.more, waiting in the loop: body bytes of the current BODY frame in the
        buffer, or False at the end of input (BODY_END, ABORT)."""
        while not self.left:
            if self.done:
                return False
            if self.end - self.pos < 8:
                await self.fill(8)
            self.body_frame(*self.header())
        if self.pos == self.end:
            self.pos = self.end = 0
            await self.recv_some()
        return True

    async def skip_body(self, n):
        while n:
            if self.pos == self.end:
                self.pos = self.end = 0
                await self.recv_some()
            take = min(n, self.end - self.pos)
            self.pos += take
            n -= take

    async def drain_body(self):
        """The rest of the request's input read and dropped, up to BODY_END or ABORT."""
        while await self.next_body():
            take = min(self.left, self.end - self.pos)
            self.pos += take
            self.left -= take

    # -- output --

    def send(self, data):
        self.sendv((data,), len(data))

    def sendv(self, parts, total):
        if self.gone:
            return
        pending = self.pending
        pending.extend(parts)
        if not self.writing:
            self.push()

    def push(self):
        """As much of pending out as the socket takes; the loop's writer for the rest."""
        pending = self.pending
        while pending:
            batch = list(itertools.islice(pending, IOV_BATCH))
            try:
                n = self.sock.sendmsg(batch, (), DONTWAIT)
            except BlockingIOError:
                n = 0
            except (BrokenPipeError, ConnectionResetError):
                self.hang_up()
                return
            for p in batch:
                size = len(p)
                if n < size:
                    if n:
                        pending[0] = memoryview(p)[n:]
                    if not self.writing:
                        self.writing = True
                        self.loop.add_writer(self.sock.fileno(), self.push)
                    return
                n -= size
                pending.popleft()
        self.stop_writing()

    def stop_writing(self):
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.sock.fileno())
        if self.drained:
            for d in self.drained:
                if not d.done():
                    d.set_result(None)
            self.drained = []

    async def flushed(self):
        """Until everything sent has gone out (or the lane's peer is gone)."""
        while self.pending and not self.gone:
            # A list: an app's tasks may send at once (a WebSocket's sender and the pump's
            # pong), and one of them cancelled must not cancel the others' wait.
            fut = self.loop.create_future()
            self.drained.append(fut)
            await fut

    def close(self, keep_fd=False):
        """The lane takes no request again. keep_fd: shut down, the descriptor kept (fd 3,
        which the hang-up watcher polls: it sees the shutdown as a hang-up)."""
        self.unwatch()
        self.pending.clear()
        self.stop_writing()
        try:
            if keep_fd:
                self.sock.shutdown(socket.SHUT_RDWR)
            else:
                self.sock.close()
        except OSError:
            pass   # the peer is gone already: nothing left to tell it
