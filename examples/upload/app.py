"""Hashes what it receives, reading the body in pieces: an upload of any size uses little memory."""
import hashlib

FORM = b"""<!doctype html><title>Upload</title><h1>Upload a file</h1>
<form method="post" enctype="application/octet-stream">
<input type="file" id="f"><button type="button" onclick="send()">Send</button></form><pre id="out"></pre>
<script>
async function send() {
  const r = await fetch(location.href, { method: "POST", body: document.getElementById("f").files[0] });
  document.getElementById("out").textContent = await r.text();
}
</script>
"""


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [FORM]
    digest = hashlib.sha256()
    size = 0
    stream = environ["wsgi.input"]
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    body = f"{size} bytes, sha256 {digest.hexdigest()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
