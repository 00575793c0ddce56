"""A hostile tenant for test/fuzz-hostile-worker.test.ts: on each request it writes
random frames, seeded by the query string (?seed=N), straight onto the socket the
request came on (lodged's, fd 3, or mod_lodge's connection to the app's own socket),
then answers, dies, or stalls, as the seed says. The same seed writes the same bytes,
so a failing request can be replayed by hand."""

import base64
import json
import os
import random
import struct
import sys
import time

PROTO_FD = 3
FRAME_MAX = 16 << 20
TYPES = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21]
NAMES = [b'Content-Length', b'Content-Type', b'Connection', b'Transfer-Encoding', b'X-A',
         b'file', b'root', b'pid', b'timeout', b'']
VALUES = [b'12', b'-1', b'18446744073709551616', b'text/plain', b'a\r\nb', b'\x00', b'close',
          b'../../etc/shadow', b'']


def request_fd():
    """The socket of the request in hand, from the runtime's frames that called the
    app (its Worker's channel): fd 3 when lodged carried it, else mod_lodge's
    connection straight to the app."""
    f = sys._getframe()
    while f is not None:
        sock = getattr(getattr(f.f_locals.get('self'), 'ch', None), 'sock', None)
        if sock is not None:
            return sock.fileno()
        f = f.f_back
    return PROTO_FD


def noise(rng, most):
    return bytes(rng.randrange(256) for _ in range(rng.randrange(most + 1)))


def pairs(rng):
    out = b''
    for _ in range(rng.randrange(5)):
        n = rng.choice(NAMES) if rng.random() < 0.7 else noise(rng, 8)
        v = rng.choice(VALUES) if rng.random() < 0.7 else noise(rng, 16)
        nlen, vlen = len(n), len(v)
        if rng.random() < 0.1:
            vlen = rng.choice([vlen + 1, 0xffffffff, rng.randrange(1 << 20)])
        out += struct.pack('>H', nlen & 0xffff) + n + struct.pack('>I', vlen) + v
    return out


def payload(rng, t):
    if t == 0x10:
        status = rng.choice([200, 204, 304, 404, 502, 0, 199, 600, 65535, rng.randrange(65536)])
        return struct.pack('>H', status) + pairs(rng)
    if t == 0x13:
        return struct.pack('>HH', rng.randrange(65536), rng.randrange(65536)) + noise(rng, 40)
    if t in (0x01, 0x14, 0x20, 0x21):
        return pairs(rng)
    return noise(rng, 64)


def pair(n, v):
    return struct.pack('>H', len(n)) + n + struct.pack('>I', len(v)) + v


def whole_response(rng):
    """A response that keeps the framing, with headers and a status of any kind."""
    status = rng.choice([200, 201, 204, 304, 404, 500, 599, rng.randrange(200, 600)])
    heads = b''.join(pair(rng.choice(NAMES[:5] + [b'Set-Cookie', b'TE', b'Upgrade']),
                          rng.choice(VALUES + [b'ok', b'\t x', b'\x80\xff']))
                     for _ in range(rng.randrange(4)))
    out = struct.pack('>BBHI', 0x10, 0, 0, 2 + len(heads)) + struct.pack('>H', status) + heads
    for _ in range(rng.randrange(3)):
        body = noise(rng, 64)
        out += struct.pack('>BBHI', 0x11, 0, 0, len(body)) + body
    return out + struct.pack('>BBHI', 0x12, 0, 0, 0)


def frames(rng):
    # Now and then a response whose framing holds, then more (or nothing) after it.
    out = whole_response(rng) if rng.random() < 0.3 else b''
    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.75:
            t = rng.choice(TYPES) if rng.random() < 0.85 else rng.randrange(256)
            p = payload(rng, t)
            length = len(p)
            r = rng.random()
            if r < 0.08:
                length = rng.choice([FRAME_MAX, FRAME_MAX + 1, 0xffffffff])
            elif r < 0.2:
                length = len(p) + rng.randrange(1, 100)      # promises more than it sends
            elif r < 0.3:
                length = max(0, len(p) - rng.randrange(1, 4))  # the rest reads as a header
            flags = rng.randrange(256) if rng.random() < 0.2 else 0
            out += struct.pack('>BBHI', t, flags, 0, length) + p
        else:
            out += noise(rng, 48)
    return out


def replay(case):
    """A saved case (test/fuzz-regressions/hostile-*.json): its writes, each followed
    by the pause, then what it does next (the runtime's own answer follows)."""
    fd = request_fd()
    for chunk in case['writes']:
        os.write(fd, bytes.fromhex(chunk))
        time.sleep(case.get('pause', 0))
    return case.get('then', 'answer')


def application(environ, start_response):
    query = environ.get('QUERY_STRING', '')
    if query.startswith('replay='):
        text = query[7:]
        then = replay(json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))))
        if then == 'exit':
            os._exit(1)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'hostile answered']
    seed = query.partition('seed=')[2]
    rng = random.Random(int(seed) if seed.isdigit() else 0)
    data = frames(rng)
    # Whole, or cut in two writes with a pause, so readers see it split.
    cut = rng.randrange(len(data) + 1)
    fd = request_fd()
    os.write(fd, data[:cut])
    if rng.random() < 0.3:
        time.sleep(0.05)
    os.write(fd, data[cut:])
    then = rng.random()
    if then < 0.1:
        os._exit(rng.choice([0, 1, 3]))
    if then < 0.15:
        time.sleep(4)   # past LodgeTimeout
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hostile answered']
