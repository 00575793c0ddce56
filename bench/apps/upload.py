"""Reads the request body (1 MiB in the bench) in 64 KiB reads and answers its
length, e.g. '1048576\\n'."""

READ = 64 * 1024


def application(environ, start_response):
    body = environ["wsgi.input"]
    try:
        left = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        left = 0
    total = 0
    while left > 0:
        data = body.read(min(READ, left))
        if not data:
            break
        total += len(data)
        left -= len(data)
    answer = b"%d\n" % total
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(answer)))])
    return [answer]
