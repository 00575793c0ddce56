"""A frame stream: lodged's socket, or a connection of mod_lodge's to the app's own
socket. The input buffer, frame parsing, ABORT polling, and sending."""

import os
import select
import socket

from .constants import ABORT, BODY, BODY_END, FRAME_MAX, READ_AHEAD
from .frames import BODY_END_HDR, HDR, IOV_BATCH
from .process import leave, protocol_error


class Gone(OSError):
    """mod_lodge's connection closed in the middle of its request: the client is gone."""


class Conn:
    """A connection taken from the app's socket, by its descriptor: what Channel uses of
    a socket, on os calls. A socket object made on an accepted descriptor would cost a
    getsockname a request (Python checks that the descriptor is a socket)."""

    __slots__ = ('fd',)

    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd

    def recv_into(self, mv, nbytes=0, flags=0):
        # flags: MSG_DONTWAIT only comes after poll() saw input, so a read cannot block.
        return os.readv(self.fd, (mv,))

    def sendall(self, data):
        fd = self.fd
        n = os.write(fd, data)
        if n < len(data):
            view = memoryview(data)
            while n < len(view):
                n += os.write(fd, view[n:])

    def sendmsg(self, parts):
        return os.writev(self.fd, parts)

    def close(self):
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class Channel:
    """lodged's socket: frames in through one reusable buffer, frames out.

    It also holds the input state of the current request (bytes left in the current BODY
    frame, end of input, abort), so wsgi.input, the abort check between response chunks
    and the final drain all move one stream position.
    """

    __slots__ = ('sock', 'buf', 'mv', 'pos', 'end', 'left', 'done', 'aborted', 'poll',
                 'idle', 'filebuf', 'direct', 'gone', 'owed')

    def __init__(self, sock, direct=False):
        # Room for a whole FRAME_CHUNK_MAX frame plus what follows it, so that the abort
        # check can look past the body the app has not read yet without growing the buffer.
        self.buf = self.fresh_buffer()
        self.mv = memoryview(self.buf)
        self.idle = False
        self.filebuf = None
        # lodged's channel ends the worker when it closes; a direct one ends its request.
        self.direct = direct
        self.attach(sock)

    def attach(self, sock):
        """Reads and writes `sock` from now on (a direct channel, once per connection)."""
        self.sock = sock
        # ACCEPTED, held back to go in the same write as the answer's first frame.
        self.owed = None
        self.pos = self.end = 0
        self.left = 0
        self.done = True
        self.aborted = self.gone = False
        # Made when first asked (poll_abort): most requests never are.
        self.poll = None

    def fresh_buffer(self):
        return bytearray(READ_AHEAD)

    def hang_up(self):
        """The peer closed: lodged's end ends the worker; mod_lodge's ends the request."""
        if not self.direct:
            leave()
        self.gone = self.done = self.aborted = True

    # -- input --

    def recv(self, flags=0):
        try:
            n = self.sock.recv_into(self.mv[self.end:], 0, flags)
        except ConnectionResetError:
            n = 0
        if not n:
            self.hang_up()
            raise Gone('the connection closed')
        self.end += n

    def need(self, n):
        """Block until n bytes are buffered at pos."""
        self.room(n)
        while self.end - self.pos < n:
            self.recv()

    def room(self, n):
        """Make room for n bytes at pos: the buffer rewound when empty, compacted or
        grown when they would not fit."""
        if self.pos == self.end:
            self.pos = self.end = 0
            if len(self.buf) > READ_AHEAD:
                # a one-off huge REQ must not keep its buffer for the worker's life
                self.buf = self.fresh_buffer()
                self.mv = memoryview(self.buf)
        if self.pos + n > len(self.buf):
            self.compact(n)

    def compact(self, room):
        have = self.end - self.pos
        if have + room > len(self.buf):
            # Only a REQ larger than the buffer gets here; BODY frames are streamed.
            nb = bytearray(have + room)
            nb[:have] = self.mv[self.pos:self.end]
            self.buf = nb
            self.mv = memoryview(nb)
        else:
            self.mv[:have] = self.mv[self.pos:self.end]
        self.pos = 0
        self.end = have

    def header(self):
        if self.end - self.pos < 8:
            self.need(8)
        t, n = HDR.unpack_from(self.buf, self.pos)
        self.pos += 8
        if n > FRAME_MAX:
            too_large(t, n)
        return t, n

    def begin(self):
        self.left = 0
        self.done = self.aborted = False
        # Most requests arrive as REQ + BODY_END in one read: see the end of input now,
        # so a bodyless request needs no further socket read at all.
        if self.end - self.pos >= 8 and HDR.unpack_from(self.buf, self.pos) == BODY_END_HDR:
            self.pos += 8
            self.done = True

    def more(self):
        """Make body bytes of the current BODY frame available; False at end of input
        (BODY_END, or ABORT: a client gone mid-upload sends no BODY_END)."""
        while not self.left:
            if self.done:
                return False
            self.body_frame(*self.header())
        if self.pos == self.end:
            self.pos = self.end = 0
            self.recv()
        return True

    def body_frame(self, t, n):
        """A frame header read inside a request's input."""
        if t == BODY:
            self.left = n
        elif t == BODY_END and not n:
            self.done = True
        elif t == ABORT and not n:
            self.done = self.aborted = True
        else:
            protocol_error('frame type 0x%02x (%d bytes) inside a request body' % (t, n))

    def skip(self, n):
        while n:
            if self.pos == self.end:
                self.pos = self.end = 0
                self.recv()
            take = min(n, self.end - self.pos)
            self.pos += take
            n -= take

    def drain(self):
        while self.more():
            take = min(self.left, self.end - self.pos)
            self.pos += take
            self.left -= take

    def poll_abort(self):
        """Has lodged sent ABORT? Never blocks, and never consumes body bytes that the
        application may still read: it looks ahead only as far as the buffer reaches."""
        if self.aborted:
            return True
        p = self.poll
        if p is None:
            p = self.poll = select.poll()
            p.register(self.sock.fileno(), select.POLLIN)
        if not p.poll(0):
            return False
        if self.end == len(self.buf):
            if not self.pos:
                return False
            self.compact(0)
        try:
            n = self.sock.recv_into(self.mv[self.end:], 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            n = 0
        if not n:
            self.hang_up()
            return True
        self.end += n
        s = self.pos + self.left
        while s + 8 <= self.end:
            t, n = HDR.unpack_from(self.buf, s)
            if t == ABORT:
                self.pos = s + 8
                self.left = 0
                self.done = self.aborted = True
                return True
            if t != BODY and t != BODY_END:
                break   # the regular reader reports it
            s += 8 + n
        return False

    # -- output --

    def send(self, data):
        if self.gone:
            return
        if self.owed is not None:
            data = self.owed + data
            self.owed = None
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.hang_up()

    def sendv(self, parts, total):
        if self.gone:
            return
        if self.owed is not None:
            parts = [self.owed] + parts
            total += len(self.owed)
            self.owed = None
        if total <= 4096:
            # Joining a small response costs less than sendmsg's iovec set-up.
            return self.send(b''.join(parts))
        if len(parts) > IOV_BATCH:
            for i in range(0, len(parts), IOV_BATCH):
                batch = parts[i:i + IOV_BATCH]
                self.sendv(batch, sum(map(len, batch)))
            return
        try:
            n = self.sock.sendmsg(parts)
            if n < total:
                # A signal cut the write short: finish piece by piece.
                for p in parts:
                    size = len(p)
                    if n >= size:
                        n -= size
                        continue
                    self.sock.sendall(memoryview(p)[n:] if n else p)
                    n = 0
        except (BrokenPipeError, ConnectionResetError):
            self.hang_up()


def too_large(t, n):
    protocol_error('frame type 0x%02x of %d bytes (limit %d)' % (t, n, FRAME_MAX))
