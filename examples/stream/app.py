"""Server-sent events: one event a second, each flushed to the browser as it is made."""
import time

PAGE = b"""<!doctype html><title>Events</title><h1>Server-sent events</h1><ol id="log"></ol>
<script>
const src = new EventSource("events");
src.onmessage = (e) => { const li = document.createElement("li"); li.textContent = e.data; log.append(li); };
</script>
"""


def application(environ, start_response):
    if environ["PATH_INFO"] != "/events":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    return events()


def events():
    n = 0
    while True:
        n += 1
        yield f"data: tick {n} at {time.strftime('%H:%M:%S')}\n\n".encode()
        time.sleep(1)
