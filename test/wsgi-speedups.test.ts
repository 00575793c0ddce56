import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { WSGI_RUNTIME } from '../sidecar/src/pool/worker-process';

// The WSGI worker's C part (native/python/lodge_speedups.c, built into build/python) against
// the same parsing in Python (serve.py's environ where the C part is missing), in /usr/bin/python3 as a worker
// runs: the environ from REQ pairs, on real-looking requests and on random and cut-short
// payloads. No Apache, no root.

const RUNTIMES = path.dirname(WSGI_RUNTIME);
const BUILT = path.resolve(RUNTIMES, '..', '..', 'build', 'python');

function py(body: string): unknown {
  const script = `
import json, random, sys
sys.path[:0] = [${JSON.stringify(RUNTIMES)}, ${JSON.stringify(BUILT)}]
sys.dont_write_bytecode = True
from _lodge_runtime import serve
from _lodge_runtime.frames import pairs

class FakeChannel:
    """What environ() reads of a channel: its buffer's view."""
    def __init__(self, payload):
        self.mv = memoryview(bytearray(payload))

def worker(payload):
    w = serve.Worker.__new__(serve.Worker)
    w.base = {'SCRIPT_NAME': '', 'wsgi.url_scheme': 'http'}
    w.ch = FakeChannel(payload)
    return w

class Refused(Exception):
    pass

def refuse(msg):
    raise Refused(msg)

serve.protocol_error = refuse

def c_env(payload):
    try:
        return worker(payload).environ(0, len(payload))
    except Refused as e:
        return 'refused: ' + str(e)

def py_env(payload):
    c, serve.pairs_environ = serve.pairs_environ, None   # as where the C part is missing
    try:
        return worker(payload).environ(0, len(payload))
    except Refused as e:
        return 'refused: ' + str(e)
    finally:
        serve.pairs_environ = c

${body}
`;
  return JSON.parse(execFileSync('/usr/bin/python3', ['-I', '-c', script], { encoding: 'utf8' }));
}

test('the worker loads the C part, and its environ is the Python one\'s', () => {
  const out = py(`
req = pairs(b'REQUEST_METHOD', b'GET', b'REQUEST_URI', b'/a%20b?x=\\xe9', b'HTTP_HOST', b'h.example',
            b'HTTPS', b'on', b'HTTP_X_EMPTY', b'', b'REQUEST_METHOD', b'POST')
print(json.dumps({'loaded': serve.pairs_environ is not None, 'c': c_env(req), 'py': py_env(req)}))
`) as { loaded: boolean; c: Record<string, string>; py: Record<string, string> };
  assert.equal(out.loaded, true, 'build/python has _lodge_speedups for /usr/bin/python3');
  assert.deepEqual(out.c, out.py);
  assert.equal(out.c.REQUEST_METHOD, 'POST', 'a later pair of a name replaces an earlier one');
  assert.equal(out.c.REQUEST_URI, '/a%20b?x=\u00e9', 'values are latin-1');
  assert.equal(out.c.HTTP_X_EMPTY, '');
  assert.equal(out.c['wsgi.url_scheme'], 'https', 'HTTPS=on is still seen');
});

test('random and cut-short REQ payloads: C and Python agree, and a bad one is refused by both', () => {
  const out = py(`
rnd = random.Random(1203)
agree = refused = 0
for case in range(3000):
    kv = []
    for _ in range(rnd.randrange(0, 12)):
        kv += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 20))),
               bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))]
    payload = bytearray(pairs(*kv))
    how = rnd.randrange(4)
    if how == 1 and payload:
        del payload[rnd.randrange(len(payload)):]          # cut short anywhere
    elif how == 2 and payload:
        payload[rnd.randrange(len(payload))] = rnd.randrange(256)   # a length may now lie
    elif how == 3:
        payload += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 7)))   # trailing bytes
    c, p = c_env(bytes(payload)), py_env(bytes(payload))
    if c != p:
        print(json.dumps({'case': case, 'payload': payload.hex(), 'c': repr(c), 'py': repr(p)}))
        sys.exit(0)
    agree += 1
    refused += isinstance(c, str)
# A length that claims the most a u32 can say, and one a byte short of its value.
huge = b'\\x00\\x01K\\xff\\xff\\xff\\xffv'
short = pairs(b'K', b'value')[:-1]
print(json.dumps({'agree': agree, 'refused': refused, 'huge': c_env(huge), 'short': c_env(short)}))
`) as { agree?: number; refused?: number; huge?: string; short?: string; case?: number };
  assert.equal(out.case, undefined, `C and Python differ: ${JSON.stringify(out)}`);
  assert.equal(out.agree, 3000);
  assert.ok(out.refused! > 500 && out.refused! < 2500, `both kinds were tried: ${out.refused} refused`);
  assert.match(out.huge!, /^refused: REQ pairs overrun the frame \(8 bytes\)/);
  assert.match(out.short!, /^refused: REQ pairs overrun the frame/);
});

test('the C environ keeps the last REQ\'s strings by place: the same name or value is the same str again, a changed one is decoded anew', () => {
  const out = py(`
a = pairs(b'REQUEST_METHOD', b'GET', b'PATH_INFO', b'/a', b'HTTP_HOST', b'h.example', b'HTTP_X_LONG', b'x' * 100, b'HTTP_X_LATIN', b'caf\\xe9')
b = pairs(b'REQUEST_METHOD', b'POST', b'PATH_INFO', b'/a', b'HTTP_HOSTS', b'h.example', b'HTTP_X_LONG', b'x' * 100, b'HTTP_X_LATIN', b'caf\\xe9')
ea, eb, ea2, ea3 = c_env(a), c_env(b), c_env(a), c_env(a)
same = lambda d1, d2, k: d1[k] is d2[k]
names = lambda d1, d2: [k1 is k2 for k1, k2 in zip([k for k in d1 if k.isupper()], [k for k in d2 if k.isupper()])]
print(json.dumps({
    'agree': [ea == py_env(a), eb == py_env(b), ea2 == py_env(a)],
    'b': {k: eb[k] for k in ('REQUEST_METHOD', 'PATH_INFO', 'HTTP_HOSTS', 'HTTP_X_LATIN')},
    'path_kept': same(ea, eb, 'PATH_INFO'), 'latin_kept': same(ea, eb, 'HTTP_X_LATIN'),
    'long_kept': same(ea, eb, 'HTTP_X_LONG'), 'names_kept': names(ea2, ea3),
    'host_renewed': [k for k in ea if k == 'HTTP_HOST'][0] is [k for k in ea2 if k == 'HTTP_HOST'][0],
}))
`) as { agree: boolean[]; b: Record<string, string>; path_kept: boolean; latin_kept: boolean; long_kept: boolean; names_kept: boolean[]; host_renewed: boolean };
  assert.deepEqual(out.agree, [true, true, true], 'each environ is the Python one\'s');
  assert.deepEqual(out.b, { REQUEST_METHOD: 'POST', PATH_INFO: '/a', HTTP_HOSTS: 'h.example', HTTP_X_LATIN: 'caf\u00e9' });
  assert.equal(out.path_kept, true, 'a value the same as at its place last time is that str');
  assert.equal(out.latin_kept, true, 'latin-1 past ASCII too');
  assert.equal(out.long_kept, false, 'a value past 64 bytes is not kept');
  assert.ok(out.names_kept.length >= 5 && out.names_kept.every((x) => x), `names kept by place: ${JSON.stringify(out.names_kept)}`);
  assert.equal(out.host_renewed, false, 'HTTP_HOSTS took HTTP_HOST\'s place in between: decoded anew');
});

test('the scoreboard slot written from C (SlotWriter) is byte for byte the Python closures\' slot', () => {
  const out = py(`
import mmap, random
from _lodge_runtime import scoreboard as sb

def board():
    b = bytearray(sb.HEADER_SIZE + 2 * sb.SEQ_SIZE + 48 + 2 * sb.SLOT_SIZE)
    for name, v in (('version', 1), ('headerSize', 64), ('slotCount', 2), ('slotSize', sb.SLOT_SIZE),
                    ('seqOffset', 64), ('slotsOffset', 128), ('pathMax', sb.PATH_MAX),
                    ('promBuckets', sb.PROM_BUCKETS), ('fineBuckets', sb.FINE_BUCKETS)):
        b[sb.HDR[name]:sb.HDR[name] + 4] = v.to_bytes(4, 'little')
    b[0:8] = sb.MAGIC
    m = mmap.mmap(-1, len(b))
    m[:] = bytes(b)
    m[64:72] = (7).to_bytes(8, 'little')   # a worker before died mid-write: odd
    return m

def fake_clock():
    """Time as a list of steps, the same for both writers (ns)."""
    rnd = random.Random(77)
    state = {'t': 10**12}
    def clock():
        state['t'] += rnd.choice((1, 900, 150_000, 3_000_000, 2 * 10**9, 70 * 10**9))
        return state['t']
    return clock

def run(writer):
    m = board()
    s = sb.Slot(m, 1, clock=fake_clock(), writer=writer)
    s.claim(4242, 3)
    s.set_state(sb.IDLE)
    rnd = random.Random(5)
    snaps = []
    methods = ('GET', b'POST', 'PROPFIND-LONGER', 'DELETE', '')
    paths = ('/', b'/hello?x=1', '/' + 'p' * 300, '/caf\\u00e9', '/\\u263a/x', b'\\xff\\x00/raw')
    for k in range(400):
        s.begin(rnd.choice(methods), rnd.choice(paths), rnd.randrange(0, 1 << 24))
        if k % 7 == 0:
            snaps.append(bytes(m))   # busy, mid-request
        s.end(rnd.choice((200, 204, 301, 404, 500, 503, 0, 99, 600, 199)))
        if k % 50 == 49:
            s.set_state(sb.LEAVING if k % 100 == 99 else sb.IDLE)
        if k == 222:
            s.claim(4343, 4)   # a new worker in the slot: counters from zero
        snaps.append(bytes(m))
    return snaps, s.told_to_leave()

c, c_leave = run(sb.SlotWriter)
p, p_leave = run(None)
first = next((i for i, (a, b) in enumerate(zip(c, p)) if a != b), None)
diff = None
if first is not None:
    diff = [i for i in range(len(c[first])) if c[first][i] != p[first][i]][:8]
print(json.dumps({'loaded': sb.SlotWriter is not None, 'snaps': len(c), 'first': first, 'at': diff,
                  'leave': [c_leave, p_leave], 'requests': int.from_bytes(c[-1][128 + 512 + 16:128 + 512 + 24], 'little')}))
`) as { loaded: boolean; snaps: number; first: number | null; at: number[] | null; leave: boolean[]; requests: number };
  assert.equal(out.loaded, true, 'build/python has SlotWriter for /usr/bin/python3');
  assert.equal(out.first, null, `the boards differ at snapshot ${out.first}, bytes ${JSON.stringify(out.at)}`);
  assert.equal(out.snaps, 458);
  assert.deepEqual(out.leave, [false, false]);
  assert.equal(out.requests, 400 - 223, 'the slot\'s request id counts from the last claim');
});
