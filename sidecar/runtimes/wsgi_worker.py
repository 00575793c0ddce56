"""Lodge WSGI worker: hosts one tenant's WSGI application (PEP 3333), one request at a
time, speaking the frame protocol of sidecar/src/protocol/PROTOCOL.md on fd 3.

    python3 -I wsgi_worker.py --root DIR --entry FILE [--callable NAME]
                              [--uid N --gid N] --log FILE

Standard library only, in one file: under -I the script's own directory is not on
sys.path, and nothing of ours should be importable by the tenant's code anyway.
"""

import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

# Frame codes: keep in step with PROTOCOL.md, native/apache/lodge_frame.h and
# sidecar/src/protocol/frames.ts.
REQ = 0x02
BODY = 0x03
BODY_END = 0x04
ABORT = 0x05
HEAD = 0x10
DATA = 0x11
END = 0x12
ERROR = 0x13
READY = 0x20
FAIL = 0x21

FRAME_MAX = 16 << 20   # LODGE_FRAME_MAX
CHUNK = 256 << 10      # largest BODY/DATA payload a sender may write
PROTO_FD = 3
IOV_BATCH = 512     # sendmsg fails with EMSGSIZE past IOV_MAX (1024) pieces

# Reserved header bytes are skipped, not checked, so that a later sender may use them.
HDR = struct.Struct('>B3xI')
U16 = struct.Struct('>H')
U32 = struct.Struct('>I')
ERR = struct.Struct('>B3xIHH')
END_FRAME = HDR.pack(END, 0)
BODY_END_HDR = (BODY_END, 0)

# Room for a whole 256 KiB frame plus what follows it, so that the abort check can look
# past the body the app has not read yet without growing the buffer.
BUF_SIZE = 512 << 10

EXIT_PROTOCOL = 2   # lodged replaces the worker
EXIT_FAIL = 3       # the app cannot be loaded: lodged backs off and shows FAIL's message

_term = False
_ch = None
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


class ContractError(Exception):
    """The application broke PEP 3333: answered 502, not 500."""


class Channel:
    """lodged's socket: frames in through one reusable buffer, frames out.

    It also holds the input state of the current request (bytes left in the current BODY
    frame, end of input, abort), so wsgi.input, the abort check between response chunks
    and the final drain all move one stream position.
    """

    __slots__ = ('sock', 'buf', 'mv', 'pos', 'end', 'left', 'done', 'aborted', 'poll',
                 'idle', 'filebuf')

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(BUF_SIZE)
        self.mv = memoryview(self.buf)
        self.pos = self.end = 0
        self.left = 0
        self.done = True
        self.aborted = False
        self.poll = select.poll()
        self.poll.register(sock.fileno(), select.POLLIN)
        self.idle = False
        self.filebuf = None

    # -- input --

    def recv(self):
        try:
            n = self.sock.recv_into(self.mv[self.end:])
        except ConnectionResetError:
            n = 0
        if not n:
            _exit(0)
        self.end += n

    def need(self, n):
        """Block until n bytes are buffered at pos."""
        if self.pos == self.end:
            self.pos = self.end = 0
            if len(self.buf) > BUF_SIZE:
                # a one-off huge REQ must not keep its buffer for the worker's life
                self.buf = bytearray(BUF_SIZE)
                self.mv = memoryview(self.buf)
        if self.pos + n > len(self.buf):
            self.compact(n)
        while self.end - self.pos < n:
            self.recv()

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
            protocol_error('frame type 0x%02x of %d bytes (limit %d)' % (t, n, FRAME_MAX))
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
            t, n = self.header()
            if t == BODY:
                self.left = n
            elif t == BODY_END and not n:
                self.done = True
            elif t == ABORT and not n:
                self.done = self.aborted = True
            else:
                protocol_error('frame type 0x%02x (%d bytes) inside a request body' % (t, n))
        if self.pos == self.end:
            self.pos = self.end = 0
            self.recv()
        return True

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
        if not self.poll.poll(0):
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
            _exit(0)
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
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            _exit(0)

    def sendv(self, parts, total):
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
            _exit(0)


class Input:
    """wsgi.input: the request body streamed from BODY frames, end of file at BODY_END."""

    __slots__ = ('ch',)

    def __init__(self, ch):
        self.ch = ch

    def read(self, size=-1):
        ch = self.ch
        if ch is None:
            return b''
        if size is None or size < 0:
            size = sys.maxsize
        parts = []
        while size and ch.more():
            p = ch.pos
            take = min(size, ch.left, ch.end - p)
            parts.append(ch.mv[p:p + take].tobytes())
            ch.pos = p + take
            ch.left -= take
            size -= take
        if ch.aborted:
            raise OSError('client disconnected')
        if len(parts) == 1:
            return parts[0]
        return b''.join(parts)

    def readline(self, size=-1):
        ch = self.ch
        if ch is None:
            return b''
        if size is None or size < 0:
            size = -1
        parts = []
        while size and ch.more():
            p = ch.pos
            take = min(ch.left, ch.end - p)
            if 0 < size < take:
                take = size
            nl = ch.buf.find(b'\n', p, p + take)
            if nl >= 0:
                take = nl + 1 - p
            parts.append(ch.mv[p:p + take].tobytes())
            ch.pos = p + take
            ch.left -= take
            if size > 0:
                size -= take
            if nl >= 0:
                break
        if ch.aborted:
            raise OSError('client disconnected')
        if len(parts) == 1:
            return parts[0]
        return b''.join(parts)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class FileWrapper:
    """wsgi.file_wrapper. Returned as the response, it is sent in 256 KiB DATA frames
    straight from the file; anywhere else it iterates like PEP 3333's example."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, 'close', None)
        if close is not None:
            close()


# RFC 9110 token; [0-9] rather than \d, which would admit other scripts' digits.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_STATUS = re.compile(r'[1-5][0-9][0-9] [^\r\n\0]*').fullmatch
_BADVAL = re.compile(r'[\r\n\0]').search
_BAD_CHAR = {'\r': 'a carriage return', '\n': 'a newline', '\0': 'a NUL byte'}

# Most apps send the same status and headers again and again: an exact match of an
# earlier, already validated list skips the validation and the encoding.
_heads = {}
HEADS_MAX = 256


def head_payload(status, headers):
    """Validate start_response's arguments; return (code, HEAD payload, Content-Length)."""
    key = None
    if type(headers) is list:
        try:
            key = (status, *headers)
            hit = _heads.get(key)
        except TypeError:   # an unhashable item: let the checks below name it
            key = hit = None
        if hit is not None:
            return hit
    if type(status) is not str:
        raise ContractError('status must be a str, not %s' % type(status).__name__)
    if not _STATUS(status):
        raise ContractError("status %r is not 'NNN reason' with NNN in 100-599" % status[:80])
    code = int(status[:3])
    if type(headers) is not list:
        raise ContractError('response headers must be a list, not %s' % type(headers).__name__)
    parts = [U16.pack(code)]
    length = None
    for h in headers:
        if type(h) is not tuple or len(h) != 2:
            raise ContractError('response header %.80r is not a (name, value) tuple' % (h,))
        name, value = h
        if type(name) is not str or type(value) is not str:
            raise ContractError('response header %.80r: name and value must be str, not %s'
                                % (h, type(value if type(name) is str else name).__name__))
        if not _TOKEN(name):
            bad = _BADVAL(name)
            what = 'contains ' + _BAD_CHAR[bad.group()] if bad else 'is not a token'
            raise ContractError('header name %.80r %s' % (name, what))
        bad = _BADVAL(value)
        if bad:
            raise ContractError('header %r value contains %s' % (name, _BAD_CHAR[bad.group()]))
        try:
            v = value.encode('latin-1')
        except UnicodeEncodeError:
            raise ContractError('header %r value %.80r is not latin-1' % (name, value)) from None
        n = name.encode('ascii')
        parts += (U16.pack(len(n)), n, U32.pack(len(v)), v)
        if len(n) == 14 and n.lower() == b'content-length':
            if not v.strip().isdigit():
                raise ContractError('header %r value %.80r is not a number' % (name, value))
            length = int(v)
    result = code, b''.join(parts), length
    if key is not None:
        if len(_heads) >= HEADS_MAX:
            _heads.clear()
        _heads[key] = result
    return result


class Exchange:
    """One response: start_response, write, and the frames queued for lodged."""

    __slots__ = ('ch', 'code', 'head', 'left', 'queued', 'out', 'size')

    def __init__(self, ch):
        self.ch = ch
        self.head = None
        self.left = None     # bytes still allowed by the app's Content-Length
        self.queued = False  # HEAD is queued or sent: headers count as sent (PEP 3333)
        self.out = []
        self.size = 0

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.queued:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.head is not None:
            raise ContractError('start_response() called twice without exc_info')
        self.code, self.head, self.left = head_payload(status, headers)
        return self.write

    def write(self, data):
        if self.head is None:
            raise ContractError('write() before start_response()')
        if not isinstance(data, bytes):
            raise ContractError('write() takes bytes, not %s' % type(data).__name__)
        if self.ch.poll_abort():
            raise OSError('client disconnected')
        if data:
            self.emit(data)
            self.flush()

    def emit(self, chunk):
        """Queue chunk as DATA frames, HEAD first; True once Content-Length is reached:
        PEP 3333 has the server stop there."""
        full = False
        left = self.left
        if left is not None:
            n = len(chunk)
            if n >= left:
                if n > left:
                    chunk = memoryview(chunk)[:left]
                full = True
                self.left = 0
            else:
                self.left = left - n
        if not self.queued:
            self.queue_head()
        out = self.out
        n = len(chunk)
        if n <= CHUNK:
            if n:
                out += (HDR.pack(DATA, n), chunk)
                self.size += 8 + n
        else:
            mv = memoryview(chunk)
            for i in range(0, n, CHUNK):
                piece = mv[i:i + CHUNK]
                out += (HDR.pack(DATA, len(piece)), piece)
            self.size += n + 8 * len(range(0, n, CHUNK))
        return full

    def flush(self):
        if self.out:
            self.ch.sendv(self.out, self.size)
            self.out = []
            self.size = 0

    def queue_head(self):
        if not self.queued:
            self.queued = True
            self.out += (HDR.pack(HEAD, len(self.head)), self.head)
            self.size += 8 + len(self.head)


class Worker:
    def __init__(self, ch, app, root, label):
        self.ch = ch
        self.app = app
        self.root = root.rstrip('/') + '/'
        self.label = label
        self.base = {
            'SCRIPT_NAME': '',
            'PATH_INFO': '',
            'QUERY_STRING': '',
            'wsgi.version': (1, 0),
            'wsgi.url_scheme': 'http',
            'wsgi.errors': _errlog,
            'wsgi.multithread': False,
            'wsgi.multiprocess': True,
            'wsgi.run_once': False,
            'wsgi.file_wrapper': FileWrapper,
            # The body ends exactly at BODY_END, chunked uploads too (mod_wsgi's flag,
            # which werkzeug needs to read a body that has no CONTENT_LENGTH).
            'wsgi.input_terminated': True,
        }

    def serve(self):
        ch = self.ch
        while True:
            # idle before the check: a SIGTERM between the two still ends the worker
            ch.idle = True
            if _term:
                _exit(0)
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

    def environ(self, p, n):
        env = self.base.copy()
        raw = self.ch.mv[p:p + n]
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
        https = env.get('HTTPS')
        if https and https.lower() in ('on', '1'):
            env['wsgi.url_scheme'] = 'https'
        return env

    def handle(self, env):
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
        if ch.aborted:
            ch.send(END_FRAME)
            return
        if err is None:
            err = self.finish(env, ex)
            if err is None:
                return
        # Read the body to BODY_END first, as before END: lodged then never has to pause
        # Apache on behalf of a request that has already ended.
        ch.drain()
        if ch.aborted:
            ch.send(END_FRAME)
            return
        msg = err[1].encode('utf-8', 'replace')[:4000]
        ch.send(ERR.pack(ERROR, 4 + len(msg), err[0], 0) + msg)

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
        ch = self.ch
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
        if not ch.done:
            ch.drain()
        if ch.aborted:
            ch.send(END_FRAME)
            return None
        ex.out.append(END_FRAME)
        ex.size += 8
        ex.flush()
        return None

    def failed(self, env, e, ex):
        if self.ch.aborted:
            return None   # the client left; what the app did about it is no error
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


def request_line(env):
    return '%s %s' % (env.get('REQUEST_METHOD'), env.get('REQUEST_URI', env.get('PATH_INFO')))


def print_exception(e):
    """The traceback for the tenant's log, without this file's frames: they are the
    same in every traceback and only hide where the tenant's code went wrong."""
    import traceback
    try:
        te = traceback.TracebackException.from_exception(e)
        te.stack = traceback.StackSummary.from_list(
            [f for f in te.stack if f.filename != __file__])
        f = _errlog or sys.stderr
        f.write(''.join(te.format()))
        f.flush()
    except Exception:
        pass   # the log itself failed (disk full, say): there is nowhere left to report


def describe(e, root, entry):
    """'app.py line 3: ModuleNotFoundError: No module named 'nope'': the innermost line of
    the tenant's own code, paths relative to the app's root."""
    import traceback
    file = line = None
    if isinstance(e, SyntaxError) and e.filename:
        file, line = e.filename, e.lineno
        text = e.msg
    else:
        frames = traceback.extract_tb(e.__traceback__)
        for fr in reversed(frames):
            if fr.filename.startswith(root):
                file, line = fr.filename, fr.lineno
                break
        text = str(e)
    if file and file.startswith(root):
        file = file[len(root):]
    else:
        # Not the tenant's file (the standard library, a system package): name the entry.
        file, line = entry, None
    where = '%s line %s' % (file, line) if line else file
    text = text.strip().splitlines()[0] if text and text.strip() else ''
    name = type(e).__name__
    if len(text) > 300:
        text = text[:300] + '...'
    return '%s: %s: %s' % (where, name, text) if text else '%s: %s' % (where, name)


# -- start --

def pairs(*kv):
    out = []
    for k, v in zip(kv[::2], kv[1::2]):
        out += (U16.pack(len(k)), k, U32.pack(len(v)), v)
    return b''.join(out)


def frame(t, payload):
    return HDR.pack(t, len(payload)) + payload


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


def source_only_imports(root):
    # Python trusts a cached .pyc whose source has the same size and the same mtime in
    # whole seconds; a tenant's quick one-character fix (same size, same second) would
    # then reload the old code. The app's own modules are therefore always compiled
    # from source; everything else (stdlib, Debian's packages) keeps its caches.
    import importlib.machinery as machinery

    class SourceLoader(machinery.SourceFileLoader):
        def get_code(self, fullname):
            return self.source_to_code(self.get_data(self.path), self.path)

    prefix = root.rstrip('/')

    def hook(path):
        p = os.path.abspath(path or '.')
        if p != prefix and not p.startswith(prefix + '/'):
            raise ImportError('not in the app tree')
        return machinery.FileFinder(p, (SourceLoader, machinery.SOURCE_SUFFIXES))

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()
    return SourceLoader


def load_app(root, entry, name):
    import importlib.util
    SourceLoader = source_only_imports(root)
    path = os.path.join(root, entry)
    stem = os.path.splitext(os.path.basename(entry))[0]
    # The module is registered under its file's stem, so `from app import db` elsewhere
    # finds this module instead of importing the file a second time.
    modname = stem if stem and stem not in sys.modules else '_lodge_app'
    if not os.path.isfile(path):
        return None, '%s: no such file in the app directory' % entry
    loader = SourceLoader(modname, path)
    spec = importlib.util.spec_from_file_location(modname, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    names = [name] if name else ['application', 'app']
    for n in names:
        app = getattr(module, n, None)
        if app is not None:
            break
    else:
        if name:
            return None, '%s: no callable named %r' % (entry, name)
        return None, ("%s: defines neither 'application' nor 'app' "
                      "(name the callable: LodgeApp wsgi %s:NAME)" % (entry, entry))
    if not callable(app):
        return None, '%s: %r is of type %s, not a WSGI callable' % (entry, n, type(app).__name__)
    return app, None


def own_modules(root, limit=2000):
    # lodged watches these files for edits: the code the app imported from its own
    # tree (not the standard library, not Debian's packages).
    out = []
    prefix = root.rstrip('/') + '/'
    for m in list(sys.modules.values()):
        f = getattr(m, '__file__', None)
        if isinstance(f, str) and f.startswith(prefix) and len(out) < limit * 2:
            out += (b'file', os.fsencode(f))
    return out


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


def on_term(signum, frame):
    global _term
    _term = True
    if _ch is not None and _ch.idle:
        _exit(0)


def main():
    global _ch
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

    signal.signal(signal.SIGTERM, on_term)
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

    _ch = Channel(sock)
    try:
        sock.sendall(frame(READY, pairs(b'pid', str(os.getpid()).encode(), *own_modules(root))))
    except OSError:
        _exit(0)
    threading.Thread(target=watch_hangup, args=(PROTO_FD,), name='lodge-hangup',
                     daemon=True).start()
    Worker(_ch, app, root, entry).serve()


if __name__ == '__main__':
    main()
