import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, forEachApache, startSite } from './helpers/site';

const SECRET = 'SECRET_KEY = "do-not-leak-4711"';
const APP = `${SECRET}
def application(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"app says: no such page " + environ["PATH_INFO"].encode()]
`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      st: {
        '.htaccess': 'LodgeApp wsgi app.py\n',
        'app.py': APP,
        'settings.py': SECRET + '\n',
        'static/style.css': 'body { color: teal }\n',
        'static/img/dot.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
      },
    }, undefined, apache);
  });
  after(async () => site?.stop());

  test('files under static/ are served by Apache with their MIME type', async () => {
    const css = await site.get('st', '/static/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.text, 'body { color: teal }\n');
    assert.match(String(css.headers['content-type']), /text\/css/);
    const svg = await site.get('st', '/static/img/dot.svg');
    assert.equal(svg.status, 200);
    assert.match(String(svg.headers['content-type']), /image\/svg\+xml/);
  });

  test('the app source and other files of the app are never sent as files', async () => {
    for (const p of ['/app.py', '/settings.py', '/static/../app.py']) {
      const r = await site.get('st', p);
      assert.doesNotMatch(r.text, /do-not-leak-4711/, `${p} leaked the source`);
    }
    const r = await site.get('st', '/app.py');
    assert.equal(r.status, 404);
    assert.equal(r.text, 'app says: no such page /app.py', 'the app, not Apache, answers for its own files');
    // Apache's own 403 page: 1.3 pads the size of its short chunks ("cf \r\n").
    const ht = await site.get('st', '/.htaccess', { lenient: apache === '1.3' });
    assert.notEqual(ht.status, 200);
    assert.doesNotMatch(ht.text, /LodgeApp/);
  });

  // The worker makes logs/ 0750: Apache's user may not search it, and Apache refuses
  // the path itself, before any module is asked.
  test('the tenant log is never sent: a path into the app\'s logs/ is refused with 403', async () => {
    // Apache's own 403 page: 1.3 pads the size of its short chunks ("d4 \r\n").
    const r = await site.get('st', '/logs/lodge.log', { lenient: apache === '1.3' });
    assert.equal(r.status, 403);
  });

  test('a missing static file goes to the app, which decides', async () => {
    const r = await site.get('st', '/static/missing.css');
    assert.equal(r.status, 404);
    assert.equal(r.text, 'app says: no such page /static/missing.css');
  });
});
