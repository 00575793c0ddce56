"""The ASGI websocket scope over mod_lodge's tunnel (PROTOCOL.md, "The tunnel"): the
handshake REQ comes without BODY_END; the app's websocket.accept is our HEAD 101 (with
Sec-WebSocket-Accept); then BODY frames carry the client's bytes, which ws_codec decodes,
and DATA frames the server's frames. The input ends with BODY_END (the client left) or
ABORT. The runtime answers pings and the close handshake itself."""

import asyncio
import collections

from .asgi_scope import http_scope
from .asgi_input import ClientGone, read_piece
from .asgi_run import run_app
from .channel import Gone
from .frames import END_FRAME
from .response import ContractError, Exchange, head_payload
from .serve import error_frame
from .ws_codec import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, Decoder, WsError, accept_key, close_frame, encode

# The largest message a client may send (over it: close 1009), as FRAME_MAX bounds a frame.
MESSAGE_MAX = 16 * 1024 * 1024
# Seconds the client has to answer our close frame before the tunnel ends anyway (well
# inside mod_lodge's TUNNEL_GRACE).
CLOSE_WAIT_S = 1
# Client messages held for an app that has not asked for them yet; past these the pump
# stops reading the tunnel until the app takes one.
INBOX_MAX = 4

CONNECTING, OPEN, DENIED = 'connecting', 'open', 'denied'


def _has_token(value, token):
    return value is not None and token in (t.strip().lower() for t in value.split(','))


def is_tunnel(env):
    """mod_lodge's TUNNEL rule (PROTOCOL.md), seen from the REQ: such a request's input
    has no BODY_END until the tunnel ends."""
    return (env.get('REQUEST_METHOD') == 'GET' and env.get('SERVER_PROTOCOL') == 'HTTP/1.1'
            and _has_token(env.get('HTTP_UPGRADE'), 'websocket')
            and _has_token(env.get('HTTP_CONNECTION'), 'upgrade')
            and 'CONTENT_LENGTH' not in env and 'HTTP_TRANSFER_ENCODING' not in env)


def websocket_scope(env, state):
    scope = http_scope(env, state)
    scope['type'] = 'websocket'
    scope['scheme'] = 'wss' if scope['scheme'] == 'https' else 'ws'
    del scope['method']
    scope['subprotocols'] = [p.strip() for p in env.get('HTTP_SEC_WEBSOCKET_PROTOCOL', '').split(',') if p.strip()]
    return scope


class WsCall:
    """receive and send of one WebSocket connection. A pump task reads the client's
    frames for as long as the connection is open, whether or not the app is in
    receive(): pings are answered and the client's close is seen (so an app that only
    sends learns of it at its next send); data messages wait in a short queue, and while
    it is full the pump reads no further (the client is held back, not buffered)."""

    def __init__(self, ch, ex, loop, key, read):
        self.ch = ch
        self.ex = ex
        self.loop = loop
        self.key = key
        self.read = read   # the next bytes of the client's, None at the end of input
        self.state = CONNECTING
        self.decoder = Decoder(MESSAGE_MAX)
        self.connected = False   # websocket.connect given
        self.close_sent = False
        self.ended = None        # the websocket.disconnect, once the client's side is over
        self.inbox = collections.deque()
        self.arrived = None      # a future receive() waits on for the pump
        self.room = None         # a future the pump waits on while the inbox is full
        self.dropping = False    # the app is done: messages still coming are dropped
        self.pump = None

    def start(self):
        self.pump = self.loop.create_task(self.pump_frames())

    async def receive(self):
        if not self.connected:
            self.connected = True
            return {'type': 'websocket.connect'}
        while not self.inbox and self.ended is None:
            if self.arrived is None:
                self.arrived = self.loop.create_future()
            await self.arrived
        if self.inbox:
            m = self.inbox.popleft()
            self.room = _wake(self.room)
            return m
        return self.ended

    async def pump_frames(self):
        """The client's frames until its side ends (close, protocol error, input over)."""
        while True:
            try:
                event = self.decoder.next()
            except WsError as e:
                self.close(e.code, e.reason)
                return self.end(e.code, e.reason)
            if event is None:
                try:
                    data = await self.read(self.ch)
                except Gone:
                    data = None
                if data is None:
                    return self.end(1006, '')
                self.decoder.feed(data)
                continue
            kind = event[0]
            if kind == 'ping':
                self.out(encode(OP_PONG, event[1]))
                await self.ch.flushed()
            elif kind == 'close':
                # Echo the close (RFC 6455 5.5.1), unless ours went first.
                self.close(event[1] if event[1] != 1005 else None, '')
                return self.end(event[1], event[2])
            elif kind != 'pong' and not self.dropping:
                while len(self.inbox) >= INBOX_MAX and not self.dropping:
                    self.room = self.loop.create_future()
                    await self.room
                if not self.dropping:
                    self.inbox.append({'type': 'websocket.receive', kind: event[1]})
                    self.arrived = _wake(self.arrived)

    def on_abort(self):
        """ABORT or the lane's end, seen while the pump was not reading."""
        if self.ended is None:
            self.end(1006, '')

    def end(self, code, reason):
        self.ended = {'type': 'websocket.disconnect', 'code': code, 'reason': reason}
        self.arrived = _wake(self.arrived)

    def out(self, frame):
        ex = self.ex
        ex.emit(frame)
        ex.flush()

    def close(self, code, reason):
        if not self.close_sent and self.state == OPEN:
            self.close_sent = True
            self.out(close_frame(code, reason))

    async def send(self, message):
        t = message.get('type')
        if t == 'websocket.send':
            if self.state != OPEN:
                raise ContractError('websocket.send before websocket.accept')
            if self.close_sent or self.ended is not None:
                raise ClientGone('the WebSocket is closed')
            text, data = message.get('text'), message.get('bytes')
            if text is not None:
                self.out(encode(OP_TEXT, text.encode('utf-8')))
            elif data is not None:
                self.out(encode(OP_BINARY, data))
            else:
                raise ContractError('websocket.send with neither bytes nor text')
            # Back-pressure: the app goes on once the lane took the message.
            await self.ch.flushed()
        elif t == 'websocket.accept':
            if self.state != CONNECTING:
                raise ContractError('websocket.accept twice, or after websocket.close')
            headers = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'), ('Sec-WebSocket-Accept', self.key)]
            sub = message.get('subprotocol')
            if sub is not None:
                headers.append(('Sec-WebSocket-Protocol', sub))
            for name, value in message.get('headers', ()):
                headers.append((name.decode('latin-1'), value.decode('latin-1')))
            ex = self.ex
            ex.code, ex.head, ex.left = head_payload('101 ASGI', headers)
            ex.queue_head()
            ex.flush()
            self.state = OPEN
        elif t == 'websocket.close':
            if self.state == CONNECTING:
                self.deny()
            else:
                self.close(message.get('code', 1000), message.get('reason') or '')
        else:
            raise ContractError('unexpected ASGI message %.80r in a websocket scope' % (t,))

    def deny(self):
        # ASGI: a close before accept is an HTTP 403.
        self.state = DENIED
        ex = self.ex
        ex.code, ex.head, ex.left = head_payload('403 ASGI', [('Content-Type', 'text/plain'), ('Content-Length', '0')])
        ex.queue_head()

    async def finish(self):
        """After the app: the close handshake's end, bounded; the tunnel ends at our END."""
        if self.state == CONNECTING:
            self.deny()
        if self.state == OPEN:
            self.close(1000, '')
            self.dropping = True
            self.room = _wake(self.room)
            if self.ended is None:
                # The client's answer to our close ends the pump.
                await asyncio.wait((self.pump,), timeout=CLOSE_WAIT_S)
        await self.stop()

    async def stop(self):
        # The pump holds the channel's reader: gone before the worker reads it again.
        self.pump.cancel()
        await asyncio.gather(self.pump, return_exceptions=True)


def _wake(fut):
    """Resolves a waiter's future, if there is one; returns None for the slot."""
    if fut is not None and not fut.done():
        fut.set_result(None)
    return None


async def serve_websocket(worker, ch, env):
    """One WebSocket connection on ch; returns the status answered (101, 403, 400 or 500)."""
    ex = Exchange(ch)
    key = accept_key(env.get('HTTP_SEC_WEBSOCKET_KEY', ''))
    if key is None or env.get('HTTP_SEC_WEBSOCKET_VERSION') != '13':
        # Not a handshake RFC 6455 allows: answered before the app sees it.
        body = b'a WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version 13\n'
        ex.code, ex.head, ex.left = head_payload('400 ASGI', [('Sec-WebSocket-Version', '13'), ('Content-Length', str(len(body)))])
        ex.emit(body)
        return await end_tunnel(ex)
    loop = worker.loop
    call = WsCall(ch, ex, loop, key, read_piece)
    call.start()
    e = await run_app(ch, loop, lambda: worker.app(websocket_scope(env, worker.state), call.receive, call.send),
                      call.on_abort)
    # ClientGone: an app that sent after the client left, its way of learning so.
    if e is not None and not isinstance(e, ClientGone):
        err = worker.failed_on(ch, env, e)
        if err is not None and call.state == CONNECTING:
            # Before the 101 it is an ordinary failed request: the visitor's 500. No
            # drain first: the tunnel's input ends only after our ERROR.
            await call.stop()
            ch.send(error_frame(err))
            await ch.flushed()
            return err[0]
        call.close(1011, 'internal error')
    await call.finish()
    return await end_tunnel(ex)


async def end_tunnel(ex):
    """END: mod_lodge closes the client's connection, then sends BODY_END, which the
    idle worker drops with whatever BODY frames came before it."""
    ex.queue_head()
    ex.out.append(END_FRAME)
    ex.size += len(END_FRAME)
    ex.flush()
    await ex.ch.flushed()
    return ex.code
