"""The lane server (PROTOCOL.md, "Lanes"): one task per lane on the worker's event loop,
each reading its lane as serve.Worker reads fd 3 (REQ, the request, END or ERROR; the
leftovers of a request already answered dropped), so a slow request on one lane leaves
the others answering.

A lane closes at its end of file (when idle at once; with a request in hand once that is
over, its writes failing meanwhile) and, on SIGTERM, as soon as it is idle. When every
lane is closed the worker leaves (the lifespan's shutdown first). Once fd 3 has hung up
the hang-up watcher gives the rest LEAVE_GRACE seconds, as nobody supervises the worker
then (process.watch_hangup).

With the app's own socket (LISTEN_FD) the server also accepts there, a connection being
a lane of one request (PROTOCOL.md, "Straight to the app"), while the worker holds fewer
requests than it has lanes, lodged's and these together; each seat counts its requests
in its own scoreboard slot. It stops accepting for good when lodged's fd 3 ends, on
SIGTERM, and when lodged writes the board's leave word."""

import asyncio
from socket import AF_UNIX, SOCK_STREAM, socket as Socket

from . import serve
from .asgi_lane import Lane
from .channel import Gone
from .constants import ABORT, BODY, BODY_END, REQ
from .process import leave, log, protocol_error


class LaneServer:
    def __init__(self, worker, lanes, listener=None, slots=None):
        self.worker = worker
        self.lanes = lanes
        for ch in lanes:
            ch.leaves = False   # lane 0 too: its end closes the lane, not the worker
        self.stopping = False
        self.listener = listener
        # One scoreboard slot per seat (entry.app_board), or None: uncounted.
        self.slots = slots
        self.seats = [None] * len(lanes)   # the connection from the app's socket each seat holds
        self.door_open = False   # the loop watches the listening socket
        self.door_shut = listener is None   # for good
        self.connections = set()   # their tasks

    def run(self):
        loop = self.worker.loop
        if serve._term:
            self.stop()   # SIGTERM came before the loop's handler was in place
        tasks = [loop.create_task(self.serve_lane(i, ch)) for i, ch in enumerate(self.lanes)]
        self.open_door()
        loop.run_until_complete(asyncio.gather(*tasks))
        # Every lane of lodged's closed: nothing new is taken; what is in hand finishes.
        self.shut_door()
        while self.connections:
            loop.run_until_complete(asyncio.gather(*self.connections))
        leave()

    def stop(self):
        """SIGTERM: no new request; the idle lanes close now, the busy ones after theirs."""
        self.stopping = True
        self.shut_door()
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
                    self.open_door()   # a seat may be free again
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
            if i == 0:
                self.shut_door()   # lodged is gone: the app's socket is the next lodged's

    # -- the app's own socket --

    def held(self):
        n = 0
        for ch in self.lanes:
            if ch.busy:
                n += 1
        for c in self.seats:
            if c is not None:
                n += 1
        return n

    def open_door(self):
        if self.door_shut or self.door_open or self.held() >= len(self.lanes):
            return
        self.door_open = True
        self.worker.loop.add_reader(self.listener.fileno(), self.on_connection)

    def pause_door(self):
        if self.door_open:
            self.door_open = False
            self.worker.loop.remove_reader(self.listener.fileno())

    def shut_door(self):
        self.door_shut = True
        self.pause_door()

    def on_connection(self):
        slots = self.slots
        # lodged's word comes before its hang-up of fd 3 (serve.Worker.serve reads it so too).
        if slots is not None and slots[0].told_to_leave():
            return self.shut_door()
        loop = self.worker.loop
        while self.held() < len(self.lanes):
            try:
                fd, _ = self.listener._accept()
            except (BlockingIOError, InterruptedError):
                return   # another worker took it
            except OSError as e:
                log("cannot accept on the app's socket (%s); no more requests are taken from it" % e)
                return self.shut_door()
            seat = self.seats.index(None)
            ch = self.seats[seat] = Lane(Socket(AF_UNIX, SOCK_STREAM, 0, fd), loop, direct=True)
            task = loop.create_task(self.serve_connection(seat, ch))
            self.connections.add(task)
            task.add_done_callback(self.connections.discard)
        # Every lane busy: the listen queue holds the rest until one is free.
        self.pause_door()

    async def serve_connection(self, seat, ch):
        """One request from mod_lodge on a connection of its own, as serve.Worker.accept."""
        worker = self.worker
        slot = self.slots[seat] if self.slots is not None else None
        try:
            ch.send(worker.accepted)
            if ch.end - ch.pos < 8:
                await ch.fill(8)
            t, n = ch.header()
            if t != REQ:
                log('a connection from Apache opened with frame type 0x%02x (%d bytes); closed' % (t, n))
                return
            ch.busy = True
            await ch.fill(n)
            env = worker.environ(ch.pos, n, ch)
            ch.pos += n
            ch.begin()
            status = 0
            if slot is not None:
                slot.begin(env.get('REQUEST_METHOD', ''), env.get('REQUEST_URI') or env.get('PATH_INFO', ''))
            try:
                status = await worker.request(ch, env)
            finally:
                if slot is not None:
                    slot.end(status)
        except Gone:
            pass   # mod_lodge left before the request began or ended: nothing to answer
        finally:
            ch.busy = False
            ch.close()
            self.seats[seat] = None
            self.open_door()
