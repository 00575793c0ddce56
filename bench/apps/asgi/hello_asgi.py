"""The ASGI hello app: plain ASGI 3, no framework; the bytes of hello.py's hello
('Hello, world!\\n', text/plain, Content-Length 14) on GET /hello, 404 otherwise.
Both ASGI systems run this file unmodified: uvicorn behind mod_proxy_http, and Lodge
(LodgeApp asgi hello_asgi.py:app)."""

BODY = b"Hello, world!\n"
HELLO = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"content-length", b"14")]}
NOT_FOUND = {"type": "http.response.start", "status": 404,
             "headers": [(b"content-type", b"text/plain"), (b"content-length", b"10")]}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/hello":
        await send(HELLO)
        await send({"type": "http.response.body", "body": BODY})
    else:
        await send(NOT_FOUND)
        await send({"type": "http.response.body", "body": b"not found\n"})
