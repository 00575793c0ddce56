"""A request's input as an ASGI app reads it: BODY frames taken from the lane only when
the app asks (so a slow reader holds lodged and Apache back), the loop waiting on the
socket meanwhile rather than blocking in it."""


class ClientGone(OSError):
    """send() after the client left (ASGI 2.4 asks for an OSError subclass)."""

    # Named plain 'ClientGone' in the tenant's tracebacks, as ContractError is.
    __module__ = '__main__'


async def read_piece(ch):
    """The next bytes of the request's input as they come (a request body, or a tunnel's
    client bytes); None at its end (BODY_END, or ABORT: then ch.aborted)."""
    if not await ch.next_body():
        return None
    p = ch.pos
    take = min(ch.left, ch.end - p)
    data = ch.mv[p:p + take].tobytes()
    ch.pos = p + take
    ch.left -= take
    # The app has made room: the loop may look past its input again (Lane.on_readable).
    ch.watch()
    return data
