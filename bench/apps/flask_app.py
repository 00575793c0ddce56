"""Flask, one route: {"message":"Hello, world!","ok":true}\\n as application/json.

Compact and in insertion order, so every system sends the same 38 bytes.
"""
from flask import Flask, jsonify

app = Flask(__name__)
app.json.compact = True
app.json.sort_keys = False


@app.route("/")
def index():
    return jsonify(message="Hello, world!", ok=True)


application = app
