import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Site, forEachApache, startSite } from './helpers/site';

// Which interpreter runs a tenant's code is the host's choice, made once in Apache's
// server config (LodgeRuntimes python|node PATH): it wins over lodged.json, a bad path is
// a configuration error, and a tenant's .htaccess cannot name one.

const PY_APP = 'def application(e, s):\n    s("200 OK", [])\n    return [b"py"]\n';
const NODE_APP = "require('node:http').createServer((q, s) => s.end('js')).listen(3000);\n";

/** A wrapper that notes each start (its uid) in a file anyone may append to, then runs the real one. */
function wrapper(dir: string, name: string, real: string): { bin: string; runs: string } {
  const runs = path.join(dir, `${name}.runs`);
  fs.writeFileSync(runs, '');
  fs.chmodSync(runs, 0o666);
  const bin = path.join(dir, name);
  fs.writeFileSync(bin, `#!/bin/sh\nid -u >> ${runs}\nexec ${real} "$@"\n`, { mode: 0o755 });
  return { bin, runs };
}

forEachApache((apache) => {
  let site: Site;
  let dir: string;
  let py: { bin: string; runs: string };
  let js: { bin: string; runs: string };
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-runtimes-'));
    fs.chmodSync(dir, 0o755);
    py = wrapper(dir, 'host-python', '/usr/bin/python3');
    js = wrapper(dir, 'host-node', '/usr/bin/node');
    site = await startSite(
      {
        py: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': PY_APP },
        js: { '.htaccess': 'LodgeApp node server.js\n', 'server.js': NODE_APP },
        sneaky: { '.htaccess': `LodgeApp wsgi app.py\nLodgeRuntimes python ${dir}/host-python\n`, 'app.py': PY_APP },
      },
      // lodged.json names interpreters that are not there: the directive must win.
      { python: '/nonexistent/python3', node: '/nonexistent/node' },
      apache,
      { hostDirectives: [`LodgeRuntimes python ${py.bin}`, `LodgeRuntimes node ${js.bin}`] },
    );
  });
  after(async () => {
    await site?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('LodgeRuntimes in the server config picks the interpreter each kind of app runs under', async () => {
    const a = await site.get('py', '/');
    assert.equal(a.status, 200, a.text);
    assert.equal(a.text, 'py');
    const b = await site.get('js', '/');
    assert.equal(b.status, 200, b.text);
    assert.equal(b.text, 'js');
    assert.equal(fs.readFileSync(py.runs, 'utf8').trim(), String(site.users.py.uid), 'the host\'s python ran, as the tenant');
    assert.equal(fs.readFileSync(js.runs, 'utf8').trim(), String(site.users.js.uid), 'the host\'s node ran, as the tenant');
  });

  test('a tenant\'s .htaccess cannot name an interpreter', async () => {
    const r = await site.get('sneaky', '/');
    assert.equal(r.status, 500);
    assert.match(site.errorLog(), /LodgeRuntimes not allowed here/);
  });
});

forEachApache((apache) => {
  test('a LodgeRuntimes that names no executable file stops Apache at start, saying why', async () => {
    await assert.rejects(
      startSite({ py: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': PY_APP } }, undefined, apache, { hostDirectives: ['LodgeRuntimes node /nonexistent/lodge-test/node'] }),
      /LodgeRuntimes node: '\/nonexistent\/lodge-test\/node' is not an executable file/,
    );
    await assert.rejects(
      startSite({ py: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': PY_APP } }, undefined, apache, { hostDirectives: ['LodgeRuntimes ruby /usr/bin/ruby'] }),
      /LodgeRuntimes takes python or node/,
    );
  });
});

forEachApache((apache) => {
  test('with LodgeDaemon off, Apache warns that LodgeRuntimes cannot reach lodged', async () => {
    const s = await startSite({ py: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': PY_APP } }, undefined, apache, {
      daemon: 'sandbox',
      hostDirectives: ['LodgeRuntimes node /usr/bin/node'],
    });
    try {
      assert.match(s.errorLog(), /LG00087: .*LodgeRuntimes reaches only the lodged Apache starts/);
      assert.equal((await s.get('py', '/')).text, 'py', 'lodged.json\'s interpreter serves meanwhile');
    } finally {
      await s.stop();
    }
  });
});
