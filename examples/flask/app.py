import os

from flask import Flask, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.route("/")
def index():
    return (
        "<!doctype html><title>Flask on Lodge</title>"
        '<link rel="stylesheet" href="static/style.css">'
        f"<h1>{os.environ.get('GREETING', 'Hello')}</h1>"
        f"<p>Served by process {os.getpid()} as uid {os.getuid()}.</p>"
        '<p><a href="hello/lodge?x=1">a route</a> · <a href="go">a redirect</a></p>'
    )


@app.route("/hello/<name>")
def hello(name):
    return jsonify(hello=name, args=request.args, cookie=request.cookies.get("seen"))


@app.route("/go")
def go():
    resp = redirect(url_for("hello", name="again"))
    resp.set_cookie("seen", "yes")
    return resp
