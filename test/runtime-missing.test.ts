import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, eventually, forEachApache, startSite } from './helpers/site';

// A host whose lodged.json names an interpreter that is not there: each kind's worker
// cannot start, the visitor gets a 502, and lodged's log names the binary of that kind.

const NO_PYTHON = '/nonexistent/lodge-test/python3';
const NO_NODE = '/nonexistent/lodge-test/node';

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite(
      {
        py: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': 'def application(e, s):\n    s("200 OK", [])\n    return [b"x"]\n' },
        js: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': "require('node:http').createServer((q, s) => s.end('x')).listen(3000);\n" },
      },
      { python: NO_PYTHON, node: NO_NODE },
      apache,
    );
  });
  after(async () => site?.stop());

  test("a missing interpreter is a 502, and lodged's log names the binary of the app's own kind", async () => {
    const py = await site.get('py', '/');
    assert.equal(py.status, 502);
    const js = await site.get('js', '/');
    assert.equal(js.status, 502);
    // lodge-spawn's own word, in the host's log: the tenant cannot mend the host's setting.
    const named = (tenant: string, bin: string) =>
      site.lodgedLog().split('\n').some((l) => l.includes(`/${tenant}/`) && l.includes(`exec ${bin}: No such file or directory`));
    await eventually(() => named('js', NO_NODE), `lodged's log names ${NO_NODE} for the Node app`);
    await eventually(() => named('py', NO_PYTHON), `lodged's log names ${NO_PYTHON} for the Python app`);
    assert.ok(!named('js', NO_PYTHON), 'the Node app\'s line does not name the Python interpreter');
  });
});
