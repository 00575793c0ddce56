"""1 MiB answered as 16 chunks of 64 KiB from a generator, Content-Length set,
so the server has to pass each chunk on as it comes."""

CHUNK = 64 * 1024
COUNT = 16
_BYTES = b"x" * CHUNK
HEADERS = (("Content-Type", "application/octet-stream"), ("Content-Length", str(CHUNK * COUNT)))


def _chunks():
    for _ in range(COUNT):
        yield _BYTES


def application(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return _chunks()
