import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, forEachApache, startSite } from './helpers/site';

const UPLOAD_APP = fs.readFileSync(path.join(__dirname, '..', '..', 'examples', 'upload', 'app.py'), 'utf8');
const SIZE = 64 * 1024 * 1024;

// One body for every server: made and hashed once.
let body: Buffer;
let expected: string;
before(() => {
  body = crypto.randomBytes(SIZE);
  expected = crypto.createHash('sha256').update(body).digest('hex');
});

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({ up: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': UPLOAD_APP } }, undefined, apache);
  });
  after(async () => site?.stop());

  test('a 64 MiB upload reaches the app whole: same size, same SHA-256', async () => {
    const r = await site.get('up', '/', { body, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 120_000 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, `${SIZE} bytes, sha256 ${expected}\n`);
  });

  test('a 64 MiB chunked upload arrives de-chunked and whole', async () => {
    const r = await site.get('up', '/', { body, chunked: 1000 * 1000 + 7, timeoutMs: 120_000 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, `${SIZE} bytes, sha256 ${expected}\n`);
  });
});
