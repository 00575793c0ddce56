"""A request's input as an ASGI app reads it: BODY frames taken from the channel only
when the app asks (so a slow reader holds lodged and Apache back), the loop waiting on
the socket meanwhile rather than blocking in it."""


class ClientGone(OSError):
    """send() after the client left (ASGI 2.4 asks for an OSError subclass)."""

    # Named plain 'ClientGone' in the tenant's tracebacks, as ContractError is.
    __module__ = '__main__'


async def readable(ch, loop):
    fut = loop.create_future()
    fd = ch.sock.fileno()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def read_piece(ch, loop):
    """The next bytes of the request's input as they come (a request body, or a tunnel's
    client bytes); None at its end (BODY_END, or ABORT: then ch.aborted)."""
    if not ch.left and not ch.done and ch.pos == ch.end:
        await readable(ch, loop)
    # more() blocks, if at all, only for the rest of a frame already begun.
    if not ch.more():
        return None
    p = ch.pos
    take = min(ch.left, ch.end - p)
    data = ch.mv[p:p + take].tobytes()
    ch.pos = p + take
    ch.left -= take
    return data
