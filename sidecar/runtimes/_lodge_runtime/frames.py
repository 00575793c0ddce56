"""Frame layouts of sidecar/src/protocol/PROTOCOL.md, and frame building for the rare
frames (READY, FAIL) that are not on the request path. The codes and limits are in
constants.py, generated from sidecar/src/protocol/protocol.json."""

import struct

from .constants import BODY_END, END

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
