/**
 * `lodgeframes.py`, for a tenant's folder: what a hostile tenant's code needs to speak
 * the frame protocol (PROTOCOL.md) on its worker's fd 3 by itself, bypassing the
 * runtime: frames, pairs, and a hand-made worker loop that answers every request.
 */
export const LODGE_FRAMES_PY = `
import os, struct

READY, FAIL, HEAD, DATA, END, BODY_END = 0x20, 0x21, 0x10, 0x11, 0x12, 0x04


def frame(t, payload=b''):
    return struct.pack('>BBHI', t, 0, 0, len(payload)) + payload


def pairs(*kv):
    return b''.join(struct.pack('>H', len(k)) + k + struct.pack('>I', len(v)) + v for k, v in kv)


def send(data):
    view = memoryview(data)
    while view:
        view = view[os.write(3, view):]


def read_exact(n):
    out = b''
    while len(out) < n:
        got = os.read(3, n - len(out))
        if not got:
            os._exit(0)  # lodged hung up
        out += got
    return out


def ready(files):
    send(frame(READY, pairs((b'pid', str(os.getpid()).encode()), *[(b'file', f.encode()) for f in files])))


def serve_forever(body):
    """The runtime's job, done by hand: every request gets 200 and body()."""
    while True:
        head = read_exact(8)
        read_exact(struct.unpack('>I', head[4:])[0])
        if head[0] == BODY_END:
            send(frame(HEAD, struct.pack('>H', 200) + pairs((b'Content-Type', b'text/plain')))
                 + frame(DATA, body()) + frame(END))
`;

/** A WSGI app that answers its worker's pid: who served the request. */
export const PID_APP = 'import os\ndef application(e, s):\n    s("200 OK", [("Content-Type", "text/plain")])\n    return [str(os.getpid()).encode()]\n';
