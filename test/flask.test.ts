import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

const APP = `
from flask import Flask, jsonify, redirect, request, url_for, make_response
app = Flask(__name__)

@app.route("/")
def index():
    return "index"

@app.route("/items/<int:item>")
def item(item):
    return jsonify(item=item, q=request.args.getlist("q"), page=request.args.get("page"))

@app.route("/login", methods=["POST"])
def login():
    resp = make_response(redirect(url_for("me")))
    resp.set_cookie("user", request.form["name"])
    return resp

@app.route("/me")
def me():
    return jsonify(user=request.cookies.get("user"), other=request.cookies.get("other"))
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ fl: { '.htaccess': 'LodgeApp wsgi app.py:app\n', 'app.py': APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  test('Flask routes by path and converts URL parameters', async () => {
    assert.equal((await site.get('fl', '/')).text, 'index');
    const r = await site.get('fl', '/items/42?q=a&q=b%20c&page=3');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(JSON.parse(r.text), { item: 42, q: ['a', 'b c'], page: '3' });
    assert.equal((await site.get('fl', '/items/notanumber')).status, 404);
    assert.equal((await site.get('fl', '/login')).status, 405);
  });

  test('Flask sets cookies and redirects; the client sends cookies back', async () => {
    const r = await site.get('fl', '/login', { body: 'name=ada', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 302);
    assert.match(String(r.headers.location), /\/me$/);
    const cookie = (r.headers['set-cookie'] ?? []).join(';');
    assert.match(cookie, /user=ada/);
    const me = await site.get('fl', '/me', { headers: { Cookie: 'user=ada; other=x y' } });
    assert.deepEqual(JSON.parse(me.text), { user: 'ada', other: 'x y' });
  });
});
