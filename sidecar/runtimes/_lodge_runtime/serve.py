"""The request loop: REQ to environ, the app's call, its body out as DATA frames, END or
ERROR. The hot path: names it uses per request are this module's globals, as they were
when the worker was one file."""

import os
import select
import struct

from . import process
from .body import FileWrapper, Input
from .channel import Channel, Conn, Gone, too_large
from .constants import ABORT, ACCEPTED, BODY, BODY_END, ERROR, FRAME_CHUNK_MAX as CHUNK, FRAME_MAX, MESSAGE_TEXT_MAX, REQ
from .frames import END_FRAME, ERR, HDR, U16, U32
from .loader import describe, print_exception
from .process import leave, log, protocol_error
from .response import ContractError, Exchange

try:
    # The pairs parsed in C (native/python/lodge_speedups.c), where it was built for this
    # interpreter; environ() below does the same in Python otherwise.
    from _lodge_speedups import environ as pairs_environ
except ImportError:
    pairs_environ = None

# Connections taken from the app's socket in a row before lodged's socket is looked at.
LODGED_EVERY = 16

# Here rather than in process.py: the loop reads _term once per request.
_term = False
_ch = None   # set by the entry once the channel exists: on_term looks at its idle flag


def on_term(signum=None, frame=None):
    global _term
    _term = True
    if _ch is not None and _ch.idle:
        leave()


class Worker:
    # An ASGI worker's event loop (asgi_serve.py): while idle the worker waits in it, so
    # that the app's own tasks run between requests.
    loop = None

    @classmethod
    def channel(cls, sock, direct=False):
        """The frame stream over sock: lodged's socket, or a connection to the app's."""
        return Channel(sock, direct)

    # What the hang-up watcher does when lodged closes fd 3 (process.watch_hangup).
    on_hangup = staticmethod(on_term)

    # What a connection taken from the app's socket is read and written through: its
    # descriptor alone (channel.Conn; a socket object costs a getsockname to make).
    connection = Conn

    # A bodyless REQ with a ticket gets ACCEPTED in front of the first output, which
    # goes out through the channel's send (PROTOCOL.md, "ACCEPTED with the answer").
    late_accept = True

    def __init__(self, ch, app, root, label, listener=None, board=None):
        self.ch = self.lodged = ch
        # Where the requests from the app's socket are counted (scoreboard.py): lodged
        # sees none of them pass.
        self.board = board
        # The app's own socket (LISTEN_FD): mod_lodge connects, one request a connection.
        self.listener = listener
        self.direct = None
        self.run = 0   # requests taken in a row without looking at lodged's socket
        # First on every connection it takes: mod_lodge knows from it that the request
        # was seen (before it, a closed connection may safely go to lodged instead).
        self.accepted = HDR.pack(ACCEPTED, 4) + U32.pack(os.getpid())
        self.app = app
        self.root = root.rstrip('/') + '/'
        self.label = label
        self.base = {
            'SCRIPT_NAME': '',
            'PATH_INFO': '',
            'QUERY_STRING': '',
            'wsgi.version': (1, 0),
            'wsgi.url_scheme': 'http',
            'wsgi.errors': process._errlog,
            'wsgi.multithread': False,
            'wsgi.multiprocess': True,
            'wsgi.run_once': False,
            'wsgi.file_wrapper': FileWrapper,
            # The body ends exactly at BODY_END, chunked uploads too (mod_wsgi's flag,
            # which werkzeug needs to read a body that has no CONTENT_LENGTH).
            'wsgi.input_terminated': True,
        }

    def serve(self):
        ch = self.lodged
        if self.listener is not None:
            self.direct = self.channel(self.listener, direct=True)
            listen_fd = self.listener.fileno()
            # Every worker of the app waits on the same socket: EPOLLEXCLUSIVE wakes one
            # of them per connection, not all (the others would only lose the accept).
            poller = select.epoll()
            poller.register(ch.sock.fileno(), select.EPOLLIN)
            poller.register(listen_fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        board = self.board
        while True:
            # idle before the check: a SIGTERM between the two still ends the worker
            ch.idle = True
            if _term:
                leave()
            # lodged's word on the board comes before its hang-up of fd 3, which may
            # still be on its way while one more connection waits on the app's socket.
            if board is not None and board.told_to_leave():
                leave()
            if self.listener is not None and ch.pos == ch.end:
                wait = -1
                if self.loop is not None:
                    self.idle(listen_fd)
                    wait = 0   # the loop saw input; another worker may have taken it
                # Under load a connection is usually waiting: take it without a
                # wait. lodged's socket is looked at when none is, and every
                # LODGED_EVERY requests, so that its frames (a carried request, its
                # hang-up) are never starved by a busy app socket.
                if wait < 0 and self.run < LODGED_EVERY and self.accept():
                    self.run += 1
                    continue
                self.run = 0
                lodged_has = False
                for fd, _ in poller.poll(wait):
                    if fd == listen_fd:
                        self.accept()
                    else:
                        lodged_has = True
                if not lodged_has:
                    continue
            elif self.loop is not None and ch.pos == ch.end and not self.idle(None):
                continue   # woken without input (SIGTERM): the checks above again
            t, n = ch.header()
            if t == REQ:
                ch.idle = False
                ch.need(n)
                env = self.environ(ch.pos, n)
                ch.pos += n
                ch.begin()
                self.handle(env)
            elif t == BODY:
                # Leftovers of the request just finished: lodged forwards body frames
                # until it has seen our END or ERROR, then drops the rest itself.
                ch.skip(n)
            elif (t == BODY_END or t == ABORT) and not n:
                continue   # leftover too; an ABORT here came after our END
            else:
                protocol_error('frame type 0x%02x (%d bytes) while idle' % (t, n))

    def accept(self):
        """One request from mod_lodge on a connection of its own to the app's socket;
        False when none was waiting (another worker took it)."""
        try:
            # The raw accept: accept4 gives a blocking descriptor already (socket.accept()
            # would make a socket object of it and set it blocking again).
            fd, _ = self.listener._accept()
        except (BlockingIOError, InterruptedError):
            return False
        conn = self.connection(fd)
        self.lodged.idle = False
        dch = self.direct
        try:
            dch.attach(conn)
            self.ch = dch
            # mod_lodge sends REQ and BODY_END in one write: one read has them both,
            # usually, read here without the channel's layers (dch.need reads the rest
            # of a REQ that came in pieces).
            dch.recv()
            if dch.end < 8:
                dch.need(8)
            t, n = HDR.unpack_from(dch.buf, 0)
            if t != REQ:
                protocol_error('frame type 0x%02x (%d bytes) opens a connection' % (t, n))
            if n > FRAME_MAX:
                too_large(t, n)
            b = dch.buf
            ticket = b[1] << 16 | b[2] << 8 | b[3]
            dch.pos = p = 8
            if dch.end < 8 + n:
                dch.need(n)   # may move what is buffered
                p = dch.pos
            env = self.environ(p, n, dch)
            dch.pos = p + n
            dch.begin()
            if ticket and dch.done and self.late_accept:
                # A bodyless REQ with a ticket: ACCEPTED goes with the answer, one
                # write and one wake-up of Apache less (PROTOCOL.md).
                dch.owed = self.accepted
            else:
                dch.send(self.accepted)
            board = self.board
            if board is None:
                self.handle(env)
            else:
                board.begin(env.get('REQUEST_METHOD', ''), env.get('REQUEST_URI') or env.get('PATH_INFO', ''), ticket)
                board.end(self.handle(env))
        except Gone:
            pass   # mod_lodge left before the request began or ended: nothing to answer
        finally:
            self.ch = self.lodged
            conn.close()
        return True

    def environ(self, p, n, ch=None):
        raw = (ch or self.ch).mv[p:p + n]
        if pairs_environ is not None:
            try:
                env = pairs_environ(self.base, raw)
            except ValueError:
                env = None
            raw.release()
            if env is None:
                protocol_error('REQ pairs overrun the frame (%d bytes)' % n)
        else:
            env = self.python_environ(raw, n)
        https = env.get('HTTPS')
        if https and https.lower() in ('on', '1'):
            env['wsgi.url_scheme'] = 'https'
        return env

    def python_environ(self, raw, n):
        """environ's pairs in Python: a copy of the base with each pair set in it."""
        env = self.base.copy()
        # latin-1 maps byte i to code point i, so the byte offsets of the pairs are
        # string offsets too: one decode for the whole payload, then slices.
        s = str(raw, 'latin-1')
        unpack16 = U16.unpack_from
        unpack32 = U32.unpack_from
        i = 0
        try:
            while i < n:
                k, = unpack16(raw, i)
                i += 2
                name = s[i:i + k]
                i += k
                v, = unpack32(raw, i)
                i += 4
                env[name] = s[i:i + v]
                i += v
        except struct.error:
            i = n + 1
        raw.release()
        if i != n:
            protocol_error('REQ pairs overrun the frame (%d bytes)' % n)
        return env

    def handle(self, env):
        """Runs one request; returns the status answered (0 when none was: a client gone)."""
        ch = self.ch
        ex = Exchange(ch)
        env['wsgi.input'] = inp = Input(ch)
        result = None
        err = None
        try:
            result = self.app(env, ex.start_response)
            if type(result) is FileWrapper:
                self.send_file(ex, result.filelike)
            else:
                self.send_iter(ex, result)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            err = self.failed(env, e, ex)
        if result is not None and type(result) is not list:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except KeyboardInterrupt:
                    raise
                except BaseException as e:
                    err = err or self.failed(env, e, ex)
        inp.ch = None
        return self.conclude(env, ex, err)

    def conclude(self, env, ex, err):
        """After the app: END (the client gone, or the response whole) or ERROR; returns
        the status answered, 0 when none was."""
        ch = self.ch
        if ch.aborted:
            ch.send(END_FRAME)
            return 0
        if err is None:
            err = self.finish(env, ex)
            if err is None:
                return 0 if ch.aborted else ex.code
        # Read the body to BODY_END first, as before END: lodged then never has to pause
        # Apache on behalf of a request that has already ended.
        ch.drain()
        if ch.aborted:
            ch.send(END_FRAME)
            return 0
        return self.send_error(err)

    def send_error(self, err):
        """ERROR for err, (status, message); returns the status."""
        self.ch.send(error_frame(err))
        return err[0]

    def send_iter(self, ex, result):
        ch = self.ch
        # A list is all there already: hold it and send once, with END when possible.
        # Anything else may be a stream, so each chunk goes out as it comes.
        held = type(result) is list
        for chunk in result:
            if type(chunk) is not bytes and not isinstance(chunk, bytes):
                raise ContractError('response body item is %s, not bytes' % type(chunk).__name__)
            if not chunk:
                continue
            if ex.head is None:
                raise ContractError('response body before start_response()')
            if ex.emit(chunk):
                return
            if not held or ex.size >= CHUNK:
                ex.flush()
                if ch.poll_abort():
                    return

    def send_file(self, ex, f):
        ch = self.ch
        readinto = getattr(f, 'readinto', None)
        if readinto is not None:
            if ch.filebuf is None:
                ch.filebuf = memoryview(bytearray(CHUNK))
            buf = ch.filebuf
        while True:
            want = CHUNK if ex.left is None else min(CHUNK, ex.left)
            if not want:
                return
            if readinto is not None:
                n = readinto(buf[:want])
                if not n:
                    return
                data = buf[:n]
            else:
                data = f.read(want)
                if not data:
                    return
                if not isinstance(data, bytes):
                    raise ContractError('file_wrapper file gave %s, not bytes'
                                        % type(data).__name__)
            if ex.head is None:
                raise ContractError('response body before start_response()')
            if ex.emit(data):
                return
            ex.flush()
            if ch.poll_abort():
                return

    def finish(self, env, ex):
        err = self.whole(env, ex)
        if err is not None:
            return err
        ch = self.ch
        if not ch.done:
            ch.drain()
        if ch.aborted:
            ch.send(END_FRAME)
            return None
        ex.out.append(END_FRAME)
        ex.size += 8
        ex.flush()
        return None

    def whole(self, env, ex):
        """After the app: None when the response it left is whole (HEAD queued), else the
        502 for it."""
        if not ex.queued:
            if ex.head is None:
                return self.broken(env, ContractError(
                    'application returned without calling start_response()'))
            ex.queue_head()
        if ex.left and ex.code >= 200 and ex.code not in (204, 304) \
                and env.get('REQUEST_METHOD') != 'HEAD':
            # Sending less than announced would leave the client waiting: cut instead.
            return self.broken(env, ContractError(
                'response is %d bytes shorter than its Content-Length' % ex.left))
        return None

    def failed(self, env, e, ex):
        if self.ch.aborted:
            return None   # the client left; what the app did about it is no error
        return self.fault(env, e)

    def fault(self, env, e):
        """What the app's exception e answers: 502 for a broken contract, else 500."""
        if isinstance(e, ContractError):
            return self.broken(env, e)
        log('%s: exception in the application' % request_line(env))
        print_exception(e)
        return 500, describe(e, self.root, self.label)

    def broken(self, env, e):
        msg = '%s: %s' % (self.label, e)
        log('%s: %s' % (request_line(env), msg))
        if e.__traceback__ is not None:
            print_exception(e)
        return 502, msg


def error_frame(err):
    """The ERROR frame for err, (status, message)."""
    msg = err[1].encode('utf-8', 'replace')[:MESSAGE_TEXT_MAX]
    return ERR.pack(ERROR, 4 + len(msg), err[0], 0) + msg


def request_line(env):
    return '%s %s' % (env.get('REQUEST_METHOD'), env.get('REQUEST_URI', env.get('PATH_INFO')))
