"""The lane server (PROTOCOL.md, "Lanes"): one task per lane on the worker's event loop,
each reading its lane as serve.Worker reads fd 3 (REQ, the request, END or ERROR; the
leftovers of a request already answered dropped), so a slow request on one lane leaves
the others answering.

A lane closes at its end of file (when idle at once; with a request in hand once that is
over, its writes failing meanwhile) and, on SIGTERM, as soon as it is idle. When every
lane is closed the worker leaves (the lifespan's shutdown first). Once fd 3 has hung up
the hang-up watcher gives the rest LEAVE_GRACE seconds, as nobody supervises the worker
then (process.watch_hangup)."""

import asyncio

from . import serve
from .channel import Gone
from .constants import ABORT, BODY, BODY_END, REQ
from .process import leave, protocol_error


class LaneServer:
    def __init__(self, worker, lanes):
        self.worker = worker
        self.lanes = lanes
        for ch in lanes:
            ch.leaves = False   # lane 0 too: its end closes the lane, not the worker
        self.stopping = False

    def run(self):
        loop = self.worker.loop
        if serve._term:
            self.stop()   # SIGTERM came before the loop's handler was in place
        tasks = [loop.create_task(self.serve_lane(i, ch)) for i, ch in enumerate(self.lanes)]
        loop.run_until_complete(asyncio.gather(*tasks))
        leave()

    def stop(self):
        """SIGTERM: no new request; the idle lanes close now, the busy ones after theirs."""
        self.stopping = True
        for ch in self.lanes:
            if not ch.busy:
                ch.closing = True
                w = ch.waiter
                if w is not None and not w.done():
                    w.set_result(None)

    async def serve_lane(self, i, ch):
        worker = self.worker
        try:
            while not self.stopping:
                if ch.end - ch.pos < 8:
                    await ch.fill(8)
                t, n = ch.header()
                if t == REQ:
                    ch.busy = True
                    await ch.fill(n)
                    env = worker.environ(ch.pos, n, ch)
                    ch.pos += n
                    ch.begin()
                    await worker.request(ch, env)
                    if ch.gone:
                        break
                elif t == BODY:
                    # Leftovers of the request just answered: lodged forwards body frames
                    # until it has seen our END or ERROR.
                    await ch.skip_body(n)
                elif (t == BODY_END or t == ABORT) and not n:
                    continue   # leftover too; an ABORT here came after our END
                else:
                    protocol_error('frame type 0x%02x (%d bytes) on idle lane %d' % (t, n, i))
        except Gone:
            pass   # the lane's end (or SIGTERM while it was idle)
        finally:
            ch.busy = False
            # fd 3 is kept, shut down: the hang-up watcher polls it.
            ch.close(keep_fd=i == 0)
