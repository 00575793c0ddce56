"""wsgi.input (the request body, read straight from the channel's buffer) and
wsgi.file_wrapper."""

import sys


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
