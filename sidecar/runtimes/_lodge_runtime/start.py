"""The START frame: what lodged tells a new worker to load, read before anything else.

lodge-spawn has already made this process the tenant; what the tenant chose (its app
directory, entry file, LodgeEnv) arrives only now, so none of it was ever seen by a
process running as root (see PROTOCOL.md, "Worker start")."""

import os

from .constants import LANES_MAX, START, START_MAX
from .frames import HDR, U16, U32
from .process import protocol_error

KEYS = ('root', 'entry', 'log', 'callable', 'slot', 'lanes')


def _read(sock, n):
    buf = bytearray()
    while len(buf) < n:
        got = sock.recv(n - len(buf))
        if not got:
            protocol_error('lodged closed the socket before START was whole')
        buf += got
    return bytes(buf)


def decode_pairs(payload):
    out, i, n = [], 0, len(payload)
    while i < n:
        if i + 2 > n:
            protocol_error('START: truncated pair name length')
        (kl,) = U16.unpack_from(payload, i)
        i += 2
        if i + kl + 4 > n:
            protocol_error('START: truncated pair')
        k = payload[i:i + kl]
        i += kl
        (vl,) = U32.unpack_from(payload, i)
        i += 4
        if i + vl > n:
            protocol_error('START: truncated pair value')
        out.append((k.decode('utf-8', 'surrogateescape'), payload[i:i + vl].decode('utf-8', 'surrogateescape')))
        i += vl
    return out


def read_start(sock):
    """Returns (opts, env) from the START frame, or exits with a protocol error."""
    t, n = HDR.unpack(_read(sock, HDR.size))
    if t != START:
        protocol_error('expected START (0x%02x), got 0x%02x' % (START, t))
    if n > START_MAX:
        protocol_error('START of %d bytes is over %d' % (n, START_MAX))
    opts, env = {}, {}
    for k, v in decode_pairs(_read(sock, n)):
        if k.startswith('env.'):
            env[k[4:]] = v
        elif k in KEYS:
            opts[k] = v
        else:
            protocol_error('START: unknown pair %r' % k)
    for k in ('root', 'entry', 'log'):
        if not opts.get(k):
            protocol_error('START: no %s' % k)
    opts['lanes'] = lanes(opts.get('lanes', '1'))
    return opts, env


def lanes(v):
    """START's `lanes`: how many requests lodged may give the worker at once (PROTOCOL.md,
    "Lanes"), a decimal 1..LANES_MAX."""
    if not (v.isascii() and v.isdigit()) or not 1 <= int(v) <= LANES_MAX:
        protocol_error('START: lanes %.20r is not a number from 1 to %d' % (v, LANES_MAX))
    return int(v)


def apply_env(env):
    # The app's own environment, which its subprocesses inherit: the tenant's to choose,
    # now that nothing running as root will read it. lodged refuses the names that would
    # change how this runtime behaves.
    os.environ.update(env)
