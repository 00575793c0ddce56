"""Lodge WSGI worker: hosts one tenant's WSGI application (PEP 3333), one request at a
time, speaking the frame protocol of sidecar/src/protocol/PROTOCOL.md on fd 3.

    lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- python3 -I wsgi_worker.py

Already the tenant when it starts (lodge-spawn dropped root before exec); what to load
comes in the START frame on fd 3.

Standard library only. The work is in _lodge_runtime/ (see its __init__.py for which
module holds what). asgi_worker.py runs this file under the name __lodge_asgi__: the same
start, serving an ASGI app.
"""

import os
import sys
# Imported before the app's folder is on sys.path, like every module of ours.
import traceback  # noqa: F401

ASGI = __name__ == '__lodge_asgi__'

# -I leaves this file's directory off sys.path. It goes in front, so that nothing else on
# the path can stand in for _lodge_runtime, and out again once the package is imported:
# the tenant's sys.path stays what it was. Every module of ours is imported here, before
# the app's directory is on sys.path, so the app can neither shadow nor replace one.
# No bytecode cache: a tenant is not to write into the install tree (nor could it).
# build/python holds the C part (_lodge_speedups), for the one interpreter it was built for.
_here = os.path.dirname(os.path.abspath(__file__))
_built = os.path.join(os.path.dirname(os.path.dirname(_here)), 'build', 'python')
sys.path[:0] = [_here, _built]
_dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
try:
    from _lodge_runtime import serve
    from _lodge_runtime.entry import main
    if ASGI:
        # asyncio with it, before the app's folder is on sys.path.
        from _lodge_runtime.asgi_serve import AsgiWorker
finally:
    sys.dont_write_bytecode = _dont_write
    sys.path.remove(_here)
    sys.path.remove(_built)


if __name__ == '__main__':
    main('wsgi', serve.Worker)
elif ASGI:
    main('asgi', AsgiWorker)
