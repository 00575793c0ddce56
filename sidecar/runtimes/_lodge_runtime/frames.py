"""Frame codes and layouts of sidecar/src/protocol/PROTOCOL.md, and frame building for
the rare frames (READY, FAIL) that are not on the request path."""

import struct

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
START = 0x22
ACCEPTED = 0x16   # worker -> mod_lodge, first on a connection it accepted: u32 pid

FRAME_MAX = 16 << 20   # LODGE_FRAME_MAX
CHUNK = 256 << 10      # largest BODY/DATA payload a sender may write
PROTO_FD = 3
LISTEN_FD = 4   # the app's own socket, when lodged made one: mod_lodge connects there
IOV_BATCH = 512     # sendmsg fails with EMSGSIZE past IOV_MAX (1024) pieces

# Reserved header bytes are skipped, not checked, so that a later sender may use them.
HDR = struct.Struct('>B3xI')
U16 = struct.Struct('>H')
U32 = struct.Struct('>I')
ERR = struct.Struct('>B3xIHH')
END_FRAME = HDR.pack(END, 0)
BODY_END_HDR = (BODY_END, 0)


def pairs(*kv):
    out = []
    for k, v in zip(kv[::2], kv[1::2]):
        out += (U16.pack(len(k)), k, U32.pack(len(v)), v)
    return b''.join(out)


def frame(t, payload):
    return HDR.pack(t, len(payload)) + payload
