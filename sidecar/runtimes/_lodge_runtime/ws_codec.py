"""WebSocket framing (RFC 6455) for the server's side of a tunnel: the handshake's
answer key, the client's frames decoded (masked, maybe fragmented, control frames in
between), the server's frames encoded (unmasked, each message one frame). No extension
is ever agreed (permessage-deflate is not offered back), so RSV bits are an error."""

import base64
import hashlib
import struct

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# RFC 6455 4.2.2: the GUID the client's key is hashed with.
_GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

_U16 = struct.Struct('>H')
_U64 = struct.Struct('>Q')
_HEAD16 = struct.Struct('>BBH')
_HEAD64 = struct.Struct('>BBQ')

# A control frame's payload, and so a close reason (after its 2-byte code), is at most 125 bytes.
CONTROL_MAX = 125


class WsError(Exception):
    """The client broke the protocol: the connection is closed with `code`."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key):
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key, or None when the key is
    not the base64 of 16 bytes (RFC 6455 4.1)."""
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except (ValueError, TypeError):
        return None
    return base64.b64encode(hashlib.sha1(key.encode('ascii') + _GUID).digest()).decode('ascii')


def unmask(data, mask):
    n = len(data)
    if not n:
        return b''
    # One XOR of two big integers: far faster in Python than a loop over the bytes.
    key = int.from_bytes((mask * (n // 4 + 1))[:n], 'little')
    return (int.from_bytes(data, 'little') ^ key).to_bytes(n, 'little')


def close_code_allowed(code):
    # RFC 6455 7.4: 1004-1006 and 1015 are never sent; 1016-2999 are reserved; 3000-4999 are
    # the registered and private ranges.
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999


class Decoder:
    """The client's frames, an explicit state machine over the bytes fed so far: each
    call of next() returns one whole event or None until more bytes come. Limits are
    checked as soon as a frame's length is known, before its payload is held."""

    def __init__(self, message_max):
        self.buf = bytearray()
        self.message_max = message_max
        self.parts = []
        self.size = 0
        self.op = None   # the opcode of a fragmented message in progress

    def feed(self, data):
        self.buf += data

    def next(self):
        """('text', str), ('bytes', b), ('ping', b), ('pong', b), ('close', code, reason),
        or None; raises WsError when the client broke the protocol."""
        while True:
            buf = self.buf
            if len(buf) < 2:
                return None
            b0, b1 = buf[0], buf[1]
            if b0 & 0x70:
                raise WsError(1002, 'reserved bits set, and no extension was agreed')
            fin, op = b0 & 0x80, b0 & 0x0F
            if not b1 & 0x80:
                raise WsError(1002, 'a client frame must be masked')
            n, i = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return None
                (n,), i = _U16.unpack_from(buf, 2), 4
            elif n == 127:
                if len(buf) < 10:
                    return None
                (n,), i = _U64.unpack_from(buf, 2), 10
            self.check(op, fin, n)
            end = i + 4 + n
            if len(buf) < end:
                return None
            payload = unmask(bytes(buf[i + 4:end]), bytes(buf[i:i + 4]))
            del buf[:end]
            event = self.event(op, fin, payload)
            if event is not None:
                return event

    def check(self, op, fin, n):
        if op >= 0x8:
            if op not in (OP_CLOSE, OP_PING, OP_PONG):
                raise WsError(1002, 'unknown control opcode 0x%x' % op)
            if n > CONTROL_MAX or not fin:
                raise WsError(1002, 'a control frame must be whole and at most 125 bytes')
            return
        if op not in (OP_CONT, OP_TEXT, OP_BINARY):
            raise WsError(1002, 'unknown opcode 0x%x' % op)
        if op == OP_CONT and self.op is None:
            raise WsError(1002, 'a continuation frame outside a message')
        if op != OP_CONT and self.op is not None:
            raise WsError(1002, 'a new message inside a fragmented one')
        if self.size + n > self.message_max:
            raise WsError(1009, 'a message over %d bytes' % self.message_max)

    def event(self, op, fin, payload):
        if op == OP_PING:
            return ('ping', payload)
        if op == OP_PONG:
            return ('pong', payload)
        if op == OP_CLOSE:
            return self.close(payload)
        if op != OP_CONT:
            self.op = op
        self.parts.append(payload)
        self.size += len(payload)
        if not fin:
            return None
        data = self.parts[0] if len(self.parts) == 1 else b''.join(self.parts)
        mop, self.op, self.parts, self.size = self.op, None, [], 0
        if mop == OP_BINARY:
            return ('bytes', data)
        try:
            return ('text', data.decode('utf-8'))
        except UnicodeDecodeError:
            raise WsError(1007, 'a text message that is not UTF-8') from None

    def close(self, payload):
        if not payload:
            return ('close', 1005, '')
        if len(payload) == 1:
            raise WsError(1002, 'a close frame of one byte')
        (code,) = _U16.unpack_from(payload)
        if not close_code_allowed(code):
            raise WsError(1002, 'close code %d is not one a peer may send' % code)
        try:
            return ('close', code, payload[2:].decode('utf-8'))
        except UnicodeDecodeError:
            raise WsError(1007, 'a close reason that is not UTF-8') from None


def encode(op, payload):
    """One whole, unmasked frame (the server's)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | op, n))
    elif n < 0x10000:
        head = _HEAD16.pack(0x80 | op, 126, n)
    else:
        head = _HEAD64.pack(0x80 | op, 127, n)
    return head + bytes(payload)


def close_frame(code, reason=''):
    if code is None:
        return encode(OP_CLOSE, b'')
    # Clipped whole characters at a time: a reason cut inside one would not be UTF-8.
    r = reason.encode('utf-8')[:CONTROL_MAX - 2].decode('utf-8', 'ignore').encode('utf-8') if reason else b''
    return encode(OP_CLOSE, _U16.pack(code) + r)
