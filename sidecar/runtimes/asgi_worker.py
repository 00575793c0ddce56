"""Lodge ASGI worker: hosts one tenant's ASGI 3 application (HTTP and lifespan scopes),
one request at a time on one event loop, speaking the frame protocol of
sidecar/src/protocol/PROTOCOL.md on fd 3. Started as wsgi_worker.py is:

    lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- python3 -I asgi_worker.py

Standard library only: this runtime is the ASGI server (_lodge_runtime/asgi_*.py). The
start is wsgi_worker.py's, run under a name that has it serve ASGI.
"""

import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wsgi_worker.py'), run_name='__lodge_asgi__')
