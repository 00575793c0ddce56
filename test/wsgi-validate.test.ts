import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

// wsgiref.validate checks both sides of PEP 3333: it raises AssertionError in the app
// when the server breaks the contract, and warns on what is merely suspicious.
const APP = `
import sys, warnings
from wsgiref.validate import validator
warnings.simplefilter("always")
def showwarning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write("VALIDATOR WARNING: %s\\n" % message)
warnings.showwarning = showwarning

def inner(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    w(b"got ")
    return [str(len(body)).encode(), b" bytes via ", environ["SERVER_PROTOCOL"].encode()]

application = validator(inner)
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ val: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a wsgiref.validate-wrapped app passes with no assertion and no warning', async () => {
    const get = await site.get('val', '/some/path?x=1');
    assert.equal(get.status, 200, get.text);
    assert.equal(get.text, 'got 0 bytes via HTTP/1.1');
    const post = await site.get('val', '/', { body: 'hello there', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(post.status, 200, post.text);
    assert.equal(post.text, 'got 11 bytes via HTTP/1.1');
    const head = await site.get('val', '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    const log = site.tenantLog('val');
    assert.doesNotMatch(log, /VALIDATOR WARNING|AssertionError|Traceback/, log);
  });
});
