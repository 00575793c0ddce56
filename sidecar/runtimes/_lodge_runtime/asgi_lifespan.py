"""The ASGI lifespan scope: startup before the worker says READY (a failure is a FAIL,
as an import error is), shutdown when the worker leaves of its own accord, bounded."""

import asyncio

from . import process
from .asgi_scope import ASGI
from .loader import describe, print_exception
from .process import fail, log

# Seconds the app's shutdown may take when the worker leaves (told to by lodged, idle,
# SIGTERM); a worker killed by a watchdog gets none.
SHUTDOWN_S = 5
# Seconds a startup that sent lifespan.startup.failed has to raise the exception behind
# it, whose traceback then goes to the tenant's log.
FAILED_RAISE_S = 1


class Lifespan:
    def __init__(self, app, loop):
        self.app = app
        self.loop = loop
        self.state = {}
        self.inbox = asyncio.Queue()
        self.started = loop.create_future()
        self.stopped = loop.create_future()
        self.asked = False   # the app called receive(): it speaks lifespan
        self.task = None

    async def receive(self):
        self.asked = True
        return await self.inbox.get()

    async def send(self, message):
        t = message.get('type') if isinstance(message, dict) else None
        if t == 'lifespan.startup.complete' or t == 'lifespan.startup.failed':
            if not self.started.done():
                self.started.set_result(None if t == 'lifespan.startup.complete' else str(message.get('message') or t))
        elif t == 'lifespan.shutdown.complete' or t == 'lifespan.shutdown.failed':
            if not self.stopped.done():
                self.stopped.set_result(None if t == 'lifespan.shutdown.complete' else str(message.get('message') or t))
        else:
            raise RuntimeError('unexpected ASGI message %.80r in the lifespan scope' % (t,))

    def start(self, sock, root, entry):
        """Runs the startup; returns self when the app speaks lifespan, None when it does
        not (it raised or returned before asking for the startup event: ASGI has the
        server go on without it); FAILs the worker when the startup failed."""
        loop = self.loop
        self.inbox.put_nowait({'type': 'lifespan.startup'})
        scope = {'type': 'lifespan', 'asgi': ASGI, 'state': self.state}
        try:
            self.task = task = loop.create_task(self.app(scope, self.receive, self.send))
        except BaseException as e:   # not a coroutine function: the app is no ASGI 3 app
            self.unsupported(e)
            return None
        loop.run_until_complete(asyncio.wait((task, self.started), return_when=asyncio.FIRST_COMPLETED))
        if self.started.done():
            why = self.started.result()
            if why is None:
                process.before_leave = self.shutdown
                return self
            # Starlette sends startup.failed with the traceback as text, then raises.
            loop.run_until_complete(asyncio.wait((task,), timeout=FAILED_RAISE_S))
            exc = task.exception() if task.done() and not task.cancelled() else None
            if exc is None:
                text = why.strip().splitlines()[-1] if why.strip() else why
                log('%s: lifespan startup failed: %s' % (entry, why))
                fail(sock, '%s: lifespan startup failed: %s' % (entry, text[:300]))
            self.failed(sock, root, entry, exc)
        exc = task.exception() if not task.cancelled() else None
        if not self.asked:
            self.unsupported(exc)
            return None
        if exc is not None:
            self.failed(sock, root, entry, exc)
        log('%s: the app returned from lifespan.startup without answering it; running without lifespan' % entry)
        return None

    def unsupported(self, exc):
        if exc is not None:
            log('the app does not take the lifespan scope (%s: %s); running without it'
                % (type(exc).__name__, str(exc)[:200]))

    def failed(self, sock, root, entry, exc):
        log('%s: lifespan startup failed:' % entry)
        print_exception(exc)
        fail(sock, describe(exc, root.rstrip('/') + '/', entry))

    def shutdown(self):
        """Worker leaving: lifespan.shutdown, at most SHUTDOWN_S seconds."""
        loop, task = self.loop, self.task
        if loop.is_running() or task is None or task.done():
            return   # left from inside a request (lodged gone), or the lifespan is over
        self.inbox.put_nowait({'type': 'lifespan.shutdown'})
        loop.run_until_complete(asyncio.wait((task, self.stopped), timeout=SHUTDOWN_S,
                                             return_when=asyncio.FIRST_COMPLETED))
        if self.stopped.done() and self.stopped.result() is not None:
            log('lifespan shutdown failed: %s' % self.stopped.result())
        elif task.done() and not task.cancelled() and task.exception() is not None:
            log('lifespan shutdown failed:')
            print_exception(task.exception())
        elif not self.stopped.done():
            log('lifespan shutdown did not end within %d s; leaving' % SHUTDOWN_S)
