"""Lodge ASGI worker: hosts one tenant's ASGI 3 application (HTTP, WebSocket and lifespan
scopes) on one event loop, one request at a time on each of its lanes and all lanes at
once (fd 3, then 6, 7, ...: START's `lanes`), speaking the frame protocol of
sidecar/src/protocol/PROTOCOL.md. Started as wsgi_worker.py is:

    lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- python3 -I asgi_worker.py

Standard library only: this runtime is the ASGI server (_lodge_runtime/asgi_*.py). The
start is wsgi_worker.py's, run under a name that has it serve ASGI.
"""

import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wsgi_worker.py'), run_name='__lodge_asgi__')
