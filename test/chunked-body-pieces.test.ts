import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, forEachApache, startSite } from './helpers/site';

const UPLOAD_APP = fs.readFileSync(path.join(__dirname, '..', '..', 'examples', 'upload', 'app.py'), 'utf8');

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ up: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': UPLOAD_APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  // A chunk 3 bytes short of mod_lodge's 64 KiB piece leaves 3 bytes of room, where
  // 1.3 would read the next chunk's size line and find no room for it.
  test('a chunked upload whose chunks end just short of a 64 KiB piece arrives whole', async () => {
    const body = crypto.randomBytes(65533 * 8);
    const expected = crypto.createHash('sha256').update(body).digest('hex');
    const r = await site.get('up', '/', { body, chunked: 65533, timeoutMs: 60_000, lenient: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, `${body.length} bytes, sha256 ${expected}\n`);
  });
});
