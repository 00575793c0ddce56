"""One response: start_response and its header validation, write(), and the HEAD and
DATA frames queued for lodged."""

import re

from .constants import DATA, FRAME_CHUNK_MAX as CHUNK, HEAD
from .frames import HDR, U16, U32


class ContractError(Exception):
    """The application broke PEP 3333: answered 502, not 500."""

    # Tracebacks in the tenant's log name it plain 'ContractError', as when the worker
    # was one script, not '_lodge_runtime.response.ContractError'.
    __module__ = '__main__'


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
