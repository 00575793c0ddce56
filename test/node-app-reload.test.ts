import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, forEachApache, startSite } from './helpers/site';
import { withLoop } from './helpers/load';

// Edits to any module a Node app loaded from its own folder roll out as for a WSGI app:
// the runtime reports the files it loaded (require.cache; ES modules through the loader's
// hooks), lodged watches them, a worker of the new code starts beside the running one
// and takes over once it listens. No request fails.

const CJS_APP = `
const { version } = require('./lib/version');
require('node:http').createServer((req, res) => res.end(version() + ' ' + process.pid)).listen(3000);
`;
const cjsVersion = (v: string) => `exports.version = () => '${v}';\n`;

const ESM_APP = `
import { createServer } from 'node:http';
import { version } from './lib/version.mjs';
createServer((req, res) => res.end(version + ' ' + process.pid)).listen(3000);
`;
const esmVersion = (v: string) => `export const version = '${v}';\n`;

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        cjs: { '.htaccess': 'LodgeApp node server.js\nLodgeProcesses 2\n', 'server.js': CJS_APP, 'lib/version.js': cjsVersion('v0') },
        esm: { '.htaccess': 'LodgeApp node server.mjs\nLodgeProcesses 2\n', 'server.mjs': ESM_APP, 'lib/version.mjs': esmVersion('e0') },
      },
      undefined,
      apache,
    );
  });
  after(async () => site?.stop());

  test('twenty edits of a module the app required, under load: each goes live and no request fails', async () => {
    const replies = await withLoop(site, 'cjs', async (loop) => {
      await eventually(() => loop.replies.length > 5, 'the loop is running');
      for (let i = 1; i <= 20; i++) {
        fs.writeFileSync(path.join(site.root, 'cjs', 'lib', 'version.js'), cjsVersion(`v${i}`));
        const want = new RegExp(`^v${i} `);
        await eventually(() => want.test(loop.replies.at(-1)?.text ?? ''), `edit ${i} is live`);
      }
      return loop.replies;
    });
    const failed = replies.filter((r) => r.status !== 200);
    assert.deepEqual(failed.slice(0, 5), [], `no failed request in ${replies.length} during twenty reloads (${failed.length} failed)`);
  });

  test('an edit of an ES module the app imported goes live too, with no failed request', async () => {
    const replies = await withLoop(site, 'esm', async (loop) => {
      // At once after the first answer: the edit may race lodged's first look at the
      // files the worker reported, and must go live all the same.
      await eventually(() => /^e0 /.test(loop.replies.at(-1)?.text ?? ''), 'the loop is running');
      for (let i = 1; i <= 3; i++) {
        fs.writeFileSync(path.join(site.root, 'esm', 'lib', 'version.mjs'), esmVersion(`e${i}`));
        const want = new RegExp(`^e${i} `);
        await eventually(() => want.test(loop.replies.at(-1)?.text ?? ''), `edit ${i} is live`);
      }
      return loop.replies;
    });
    assert.deepEqual(replies.filter((r) => r.status !== 200).slice(0, 5), []);
  });
});
