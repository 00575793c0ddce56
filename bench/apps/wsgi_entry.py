"""The one WSGI entry every system hosts: routes on the first path segment.

    GET  /hello   -> hello.application       Hello, world!\n (text/plain, 14 B)
    GET  /flask/  -> flask_app.application   {"message":"Hello, world!","ok":true}\n
    GET  /stream  -> stream.application      1 MiB as 16 x 64 KiB chunks
    POST /upload  -> upload.application      reads the body, answers its length

The dispatch is a dict lookup, the same for every system, so what differs between
columns of the bench is the hosting, not the app.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

import flask_app  # noqa: E402
import hello  # noqa: E402
import stream  # noqa: E402
import upload  # noqa: E402

ROUTES = {
    "hello": hello.application,
    "flask": flask_app.application,
    "stream": stream.application,
    "upload": upload.application,
}

NOT_FOUND = b"not found\n"


def application(environ, start_response):
    path = environ.get("PATH_INFO") or "/"
    first, slash, rest = path[1:].partition("/")
    app = ROUTES.get(first)
    if app is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(NOT_FOUND)))])
        return [NOT_FOUND]
    # The sub-app sees itself mounted at /<first> (Flask's route is then '/').
    environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + "/" + first
    environ["PATH_INFO"] = "/" + rest if slash else ""
    return app(environ, start_response)
