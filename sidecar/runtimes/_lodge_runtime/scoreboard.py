"""The worker's slot of its pool's scoreboard (sidecar/src/scoreboard/LAYOUT.md): what it
is doing and what it did, written into a file lodged maps nowhere but reads every few
hundred ms, instead of a message per request.

    slot = Scoreboard.open(fd, index)     # the descriptor lodged handed down, or a path
    slot.claim(pid, generation)           # state 'starting'
    slot.set_state(IDLE)
    slot.begin(b'GET', b'/path')          # state 'busy', the request's start time
    slot.end(200, seconds)                # counters, latency buckets, state 'idle'

Each change is bracketed by the slot's sequence number: odd while it is being written,
even again after, so that lodged never takes half of one change and half of another.
Fields are stored through memoryview casts of the map (one store per field); the layout
is little-endian, which is this machine's order (checked at open)."""

import math
import mmap
import os
import struct
import sys
from bisect import bisect_left
from time import monotonic_ns

try:
    # The slot written from C (native/python/lodge_board.c), where it was built for this
    # interpreter; Slot's closures below do the same in Python otherwise.
    from _lodge_speedups import SlotWriter
except ImportError:
    SlotWriter = None

# Keep in step with sidecar/src/scoreboard/layout.ts (test/scoreboard.test.ts compares them).
MAGIC = b'LODGEBRD'
VERSION = 1
HEADER_SIZE = 64
SEQ_SIZE = 8
SLOT_SIZE = 512
METHOD_MAX = 8
PATH_MAX = 120
STATUS_CLASSES = 6
PROM_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)   # latency.ts PROMETHEUS_BUCKETS
PROM_BUCKETS = len(PROM_BOUNDS) + 1
FINE_BUCKETS = 42
FINE_BASE = 0.0001
FLAG_PATH_CUT = 1

# Slot field offsets (bytes from the slot's start).
OFF = {
    'pid': 0, 'generation': 4, 'state': 8, 'methodLen': 9, 'pathLen': 10, 'flags': 12,
    'requestId': 16, 'sinceNs': 24, 'latencySumNs': 32, 'statusClass': 40,
    'method': 88, 'path': 96, 'prom': 216, 'fine': 272, 'end': 440, 'leave': 440,
    'ticket': 444,
}
# Header field offsets.
HDR = {
    'magic': 0, 'version': 8, 'headerSize': 12, 'slotCount': 16, 'slotSize': 20,
    'seqOffset': 24, 'slotsOffset': 28, 'pathMax': 32, 'promBuckets': 36, 'fineBuckets': 40,
}

EMPTY, STARTING, IDLE, BUSY, LEAVING = range(5)
STATES = ('empty', 'starting', 'idle', 'busy', 'leaving')

class ScoreboardError(Exception):
    """The board is not one this runtime can write (wrong file, version, or slot)."""



# Bucket bounds in whole ns (a whole ns is <= a bound exactly when it is <= its floor;
# ints, because comparing an int with a float costs Python several times more). end()
# finds both buckets with one bisect over the union of the two sets of bounds: between
# two neighbours of the union lies no bound of either set, so each position of the
# union names one fine and one Prometheus bucket.
FINE_NS = tuple(math.floor(FINE_BASE * 1e9 * math.sqrt(2) ** i) for i in range(FINE_BUCKETS - 1))
PROM_NS = tuple(round(b * 1e9) for b in PROM_BOUNDS)
_UNION = tuple(sorted(set(FINE_NS + PROM_NS)))
_FINE_AT = tuple(bisect_left(FINE_NS, u) for u in _UNION) + (FINE_BUCKETS - 1,)
_PROM_AT = tuple(bisect_left(PROM_NS, u) for u in _UNION) + (PROM_BUCKETS - 1,)
# Status class index by status: 1xx..5xx, and anything else (5; 0: no status was sent).
_CLASS_AT = {status: status // 100 - 1 for status in range(100, 600)}


def buckets(ns):
    """(fine, Prometheus) bucket of a request that took `ns`: latency.ts's fineIndex and
    its PROMETHEUS_BUCKETS, each the first bucket whose upper bound is >= the duration."""
    j = bisect_left(_UNION, ns)
    return _FINE_AT[j], _PROM_AT[j]


class Scoreboard:
    @staticmethod
    def open(fd_or_path, index):
        """This worker's slot `index` of the board at `fd_or_path`: an inherited
        descriptor, or a path (opened, mapped, closed). An inherited descriptor is made
        close-on-exec: a program the app runs gets neither it nor the map."""
        return Slot(_map(fd_or_path), index)

    @staticmethod
    def open_block(fd_or_path, first, count):
        """Slots first..first+count-1 on one map: a worker with several lanes has one
        per lane (lodged reads the leave word of the first)."""
        m = _map(fd_or_path)
        return [Slot(m, first + i) for i in range(count)]


def _map(fd_or_path):
    if isinstance(fd_or_path, int):
        fd, mine = fd_or_path, False
        os.set_inheritable(fd, False)
    else:
        fd, mine = os.open(fd_or_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC), True
    try:
        size = os.fstat(fd).st_size
        if size < HEADER_SIZE:
            raise ScoreboardError('the board is %d bytes, shorter than its header' % size)
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        if mine:
            os.close(fd)


def _u32(m, at):
    return int.from_bytes(m[at:at + 4], 'little')


def _check(m, index):
    """Where slot `index` and its sequence number lie, once the header is this layout's."""
    if sys.byteorder != 'little':
        raise ScoreboardError('the board is little-endian; this machine is not')
    if m[0:8] != MAGIC or _u32(m, HDR['version']) != VERSION:
        raise ScoreboardError('not a version %d Lodge scoreboard' % VERSION)
    if (_u32(m, HDR['slotSize']), _u32(m, HDR['pathMax']), _u32(m, HDR['promBuckets']),
            _u32(m, HDR['fineBuckets'])) != (SLOT_SIZE, PATH_MAX, PROM_BUCKETS, FINE_BUCKETS):
        raise ScoreboardError("the board's layout is not this runtime's")
    count = _u32(m, HDR['slotCount'])
    seq_at = _u32(m, HDR['seqOffset'])
    slots_at = _u32(m, HDR['slotsOffset'])
    if (not 0 <= index < count or seq_at % 8 or slots_at % 64
            or seq_at + count * SEQ_SIZE > slots_at or slots_at + count * SLOT_SIZE > len(m)):
        raise ScoreboardError('slot %d is not on a board of %d slots' % (index, count))
    return slots_at + index * SLOT_SIZE, seq_at + index * SEQ_SIZE


class Slot:
    """One worker's slot. begin() and end() are SlotWriter's where the C part is built,
    else closures over the field positions and the counters (cell variables are the
    cheapest names Python looks up), storing one memoryview item per field that changed,
    eight stores each: LAYOUT.md says what a pair costs. `clock` (monotonic_ns by
    default) and `writer` (SlotWriter, or None for the closures) are for tests."""

    def __init__(self, m, index, clock=None, writer=SlotWriter):
        o, seq_at = _check(m, index)
        self._m = m
        b = memoryview(m)
        q = b.cast('Q')
        i = b.cast('I')
        self._b, self._q, self._i, self._o = b, q, i, o
        if writer is not None:
            self._wire(writer(m, o, seq_at, _UNION, _FINE_AT, _PROM_AT, clock))
            return
        seq_q = seq_at // 8
        meta_q = (o + OFF['state']) // 8   # state, method and path lengths, flags: one u64
        rid_q = (o + OFF['requestId']) // 8
        since_q = (o + OFF['sinceNs']) // 8
        sum_q = (o + OFF['latencySumNs']) // 8
        class_q = (o + OFF['statusClass']) // 8
        method_at = o + OFF['method']   # the path follows it: one store for both
        meta_at = o + OFF['state']
        prom_i = (o + OFF['prom']) // 4
        fine_i = (o + OFF['fine']) // 4
        ticket_i = (o + OFF['ticket']) // 4
        self._seq_q, self._meta_q, self._since_q = seq_q, meta_q, since_q
        # A worker before this one may have died mid-write: go on from an even number.
        seq = (q[seq_q] + 1) & ~1
        q[seq_q] = seq
        # The counters live here, not read back from the map: what else can write the
        # file (the app's children) cannot make this process raise on them.
        rid = total_ns = since = meta = 0
        by_class = [0] * STATUS_CLASSES
        prom = [0] * PROM_BUCKETS
        fine = [0] * FINE_BUCKETS
        methods = {}
        union, fine_at, prom_at, class_at = _UNION, _FINE_AT, _PROM_AT, _CLASS_AT
        clock = clock or monotonic_ns
        # meta, requestId, sinceNs (and latencySumNs) lie side by side: one pack for them.
        head = struct.Struct('<3Q').pack_into
        tail = struct.Struct('<4Q').pack_into

        def method_word(method):
            w = methods.get(method)
            if w is None:
                raw = method if method.__class__ is bytes else method.encode('latin-1', 'replace')
                raw = raw[:METHOD_MAX]
                if len(methods) >= 64:   # methods are few; a client inventing them is not kept
                    methods.clear()
                w = methods[method] = (raw.ljust(METHOD_MAX, b'\0'), len(raw) << 8)
            return w

        def begin(method, path, ticket=0):
            """A request starts: `method`, `path` as bytes or str (str taken as latin-1);
            `ticket`, its REQ's (0: none), by which lodged finds the worker of a request
            that failed before ACCEPTED."""
            nonlocal seq, rid, since, meta
            if path.__class__ is not bytes:
                path = path.encode('latin-1', 'replace')
            word, mlen = methods.get(method) or method_word(method)
            n = len(path)
            if n > PATH_MAX:
                path = path[:PATH_MAX]
                n = PATH_MAX
                meta = BUSY | mlen | n << 16 | FLAG_PATH_CUT << 32
            else:
                meta = BUSY | mlen | n << 16
            since = clock()
            rid += 1
            q[seq_q] = seq + 1
            head(b, meta_at, meta, rid, since)
            b[method_at:method_at + 8 + n] = word + path
            i[ticket_i] = ticket
            seq += 2
            q[seq_q] = seq

        def end(status):
            """The request ended with `status` (0 when none was sent)."""
            nonlocal seq, total_ns, since, meta
            now = clock()
            if meta & 0xFF == BUSY:
                total_ns += now - since
                j = bisect_left(union, now - since)
            else:
                j = 0
            fb = fine_at[j]
            pb = prom_at[j]
            c = class_at.get(status, 5)
            since = now
            meta = meta & ~0xFF | IDLE   # the last request's method and path stay shown
            q[seq_q] = seq + 1
            tail(b, meta_at, meta, rid, now, total_ns)
            q[class_q + c] = by_class[c] = by_class[c] + 1
            i[prom_i + pb] = prom[pb] = (prom[pb] + 1) & 0xFFFFFFFF
            i[fine_i + fb] = fine[fb] = (fine[fb] + 1) & 0xFFFFFFFF
            seq += 2
            q[seq_q] = seq

        def change(fields, state):
            """Any other change, bracketed the same way: `fields` are (view, index, value) stores."""
            nonlocal seq, meta, since
            seq += 1
            q[seq_q] = seq
            for view, k, v in fields:
                view[k] = v
            meta = meta & ~0xFF | state
            since = clock()
            q[meta_q] = meta
            q[since_q] = since
            seq += 1
            q[seq_q] = seq

        def reset():
            nonlocal rid, total_ns, since, meta
            rid = total_ns = since = meta = 0
            by_class[:] = [0] * STATUS_CLASSES
            prom[:] = [0] * PROM_BUCKETS
            fine[:] = [0] * FINE_BUCKETS

        self.begin, self.end, self._change, self._reset = begin, end, change, reset

    def _wire(self, w):
        """begin, end, the bracket of other changes and the leave word, through w."""
        opened, closed = w.open, w.close

        def change(fields, state):
            opened()
            for view, k, v in fields:
                view[k] = v
            closed(state)

        self.begin, self.end, self._change, self._reset = w.begin, w.end, change, w.reset
        self.told_to_leave = w.leaving

    def told_to_leave(self):
        """lodged wants this worker gone (a sibling app's turn, old code): true once it
        wrote the slot's leave word. Read before each accept: a hang-up of fd 3 can
        come a moment after the worker took one more connection."""
        return self._i[(self._o + OFF['leave']) // 4] != 0

    def claim(self, pid, generation):
        """A new worker takes the slot: all zero but its pid and generation, state 'starting'."""
        self._reset()
        o, q, i = self._o, self._q, self._i
        fields = [(q, k, 0) for k in range(o // 8, (o + OFF['end']) // 8)]
        fields += [(i, (o + OFF['pid']) // 4, pid & 0xFFFFFFFF), (i, (o + OFF['generation']) // 4, generation & 0xFFFFFFFF),
                   (i, (o + OFF['ticket']) // 4, 0)]
        self._change(fields, STARTING)

    def set_state(self, state):
        """STARTING, IDLE or LEAVING (begin() and end() set BUSY and IDLE themselves)."""
        if state not in (STARTING, IDLE, LEAVING):
            raise ValueError('a slot is set to STARTING, IDLE or LEAVING. Got %r' % (state,))
        self._change((), state)
