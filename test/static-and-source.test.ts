import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, startSite } from './helpers/site';

const SECRET = 'SECRET_KEY = "do-not-leak-4711"';
const APP = `${SECRET}
def application(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"app says: no such page " + environ["PATH_INFO"].encode()]
`;

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
  });
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
  for (const p of ['/app.py', '/settings.py', '/logs/lodge.log', '/static/../app.py']) {
    const r = await site.get('st', p);
    assert.doesNotMatch(r.text, /do-not-leak-4711/, `${p} leaked the source`);
  }
  const r = await site.get('st', '/app.py');
  assert.equal(r.status, 404);
  assert.equal(r.text, 'app says: no such page /app.py', 'the app, not Apache, answers for its own files');
  const ht = await site.get('st', '/.htaccess');
  assert.notEqual(ht.status, 200);
  assert.doesNotMatch(ht.text, /LodgeApp/);
});

test('a missing static file goes to the app, which decides', async () => {
  const r = await site.get('st', '/static/missing.css');
  assert.equal(r.status, 404);
  assert.equal(r.text, 'app says: no such page /static/missing.css');
});
