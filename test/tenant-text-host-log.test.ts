import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Site, eventually, startSite } from './helpers/site';
import { forEachPath } from './helpers/raw';
import { LODGE_FRAMES_PY } from './helpers/raw-frames';

// What a tenant writes must not become lines of the host's logs: lodged's, and
// Apache's error log that mod_lodge writes lodged's answers to. On both paths: straight
// to the app (lodged.json direct) too, an app that never gets a worker ready is
// served by lodged, with its app socket and board made for it.

/** A line that would pass for one of lodged's own. */
const FORGED = 'FORGED-LINE [error] lodged[1]: the host is compromised';

/** An app whose worker sends its own FAIL: `bytes` of text full of newlines and forged lines. */
const failWith = (bytes: number) => `
import lodgeframes as lf
text = ('boom\\n${FORGED}\\n' * ${Math.ceil(bytes / 60)}).encode()[:${bytes}]
lf.send(lf.frame(lf.FAIL, text))
import os
os._exit(3)
`;

const FAILING = 'raise RuntimeError("no")\n';
/** Fails to import, the runtime's way, with a 1 MiB message full of newlines and forged lines. */
const RAISES = `raise RuntimeError("x\\n${FORGED}\\n" * ${Math.ceil((1 << 20) / 60)})\n`;
/** Counts its start attempts in starts.txt, then fails to import. */
const COUNTED = 'open("starts.txt", "a").write("x")\nraise RuntimeError("broken")\n';
const WORKING = 'def application(e, s):\n    s("200 OK", [])\n    return [b"fixed"]\n';
const NEWLINE_DIR = `a\n${FORGED}`;
const MANY = 40;

const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
const noForgedLine = (text: string, which: string) => {
  const forged = text.split('\n').filter((l) => l.startsWith('FORGED-LINE'));
  assert.deepEqual(forged, [], `no forged line in ${which}`);
};

forEachPath((via) => {
  let site: Site;
  before(async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < MANY; i++) {
      many[`a${i}/.htaccess`] = 'LodgeApp wsgi app.py\n';
      many[`a${i}/app.py`] = FAILING;
    }
    site = await startSite({
      f: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': failWith(60_000), 'lodgeframes.py': LODGE_FRAMES_PY },
      g: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': failWith(1 << 20), 'lodgeframes.py': LODGE_FRAMES_PY },
      r: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': RAISES },
      nl: { [`${NEWLINE_DIR}/.htaccess`]: 'LodgeApp wsgi app.py\n', [`${NEWLINE_DIR}/app.py`]: FAILING },
      many,
      loop: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': COUNTED },
      fix: { '.htaccess': 'LodgeApp wsgi app.py\n', 'app.py': FAILING },
    }, via.lodged);
  });
  after(async () => site?.stop());

  test('an import error of 1 MiB, a FAIL of 60 KB or of 1 MiB, full of newlines: both host logs grow by a bounded amount and get no forged line', async () => {
    const lodged0 = size(site.sb.lodgedLog);
    const apache0 = size(site.sb.errorLog);
    for (const t of ['r', 'f', 'g']) {
      for (let i = 0; i < 3; i++) assert.equal((await site.get(t, '/')).status, 502);
    }
    await eventually(() => /g\/app\.py/.test(site.lodgedLog()), 'lodged logged the second app');
    const lodgedGrew = size(site.sb.lodgedLog) - lodged0;
    const apacheGrew = size(site.sb.errorLog) - apache0;
    assert.ok(lodgedGrew < 24_576, `lodged's log grew by ${lodgedGrew} bytes for nine failed requests`);
    assert.ok(apacheGrew < 24_576, `Apache's error log grew by ${apacheGrew} bytes for nine failed requests`);
    noForgedLine(site.lodgedLog(), "lodged's log");
    noForgedLine(site.errorLog(), "Apache's error log");
    assert.match(site.lodgedLog(), /boom\\nFORGED-LINE/, 'the text is there, escaped');
    assert.match(site.lodgedLog(), /FAIL frame of 1048576 bytes is over the 65536-byte limit/);
  });

  test('a tenant folder whose name holds a newline is named on one line', async () => {
    const r = await site.get('nl', `/${encodeURIComponent(NEWLINE_DIR)}/`);
    assert.equal(r.status, 502);
    await eventually(() => /FORGED-LINE.*app failed to start/.test(site.lodgedLog()), 'lodged logged the app by its folder');
    noForgedLine(site.lodgedLog(), "lodged's log");
    noForgedLine(site.errorLog(), "Apache's error log");
  });

  test('lines about one tenant are rate-limited, and the dropped ones counted', async () => {
    const uid = site.users.many.uid;
    const t0 = Date.now();
    for (let i = 0; i < MANY; i += 8) {
      await Promise.all(Array.from({ length: 8 }, (_, j) => site.get('many', `/a${i + j}/`)));
    }
    await eventually(() => new RegExp(`uid ${uid}: \\d+ log line\\(s\\) about this tenant were dropped`).test(site.lodgedLog()), 'a line says how many were dropped', 15_000);
    const mine = site.lodgedLog().split('\n').filter((l) => l.includes(`${site.root}/many/`));
    // A burst of 30, then one line per 2 s.
    const allowed = 30 + Math.ceil((Date.now() - t0) / 2000);
    assert.ok(mine.length <= allowed, `${mine.length} lines about the tenant's ${MANY} failing apps (${allowed} allowed)`);
  });

  test('a crash loop with the entry file touched all the time: start attempts stay few; a real fix is tried at once', async () => {
    const dir = path.join(site.root, 'loop');
    const until = Date.now() + 6000;
    let t = 0;
    while (Date.now() < until) {
      fs.utimesSync(path.join(dir, 'app.py'), new Date(), new Date(1_700_000_000_000 + ++t * 1000));
      await site.get('loop', '/');
      await new Promise((r) => setTimeout(r, 250));
    }
    const starts = fs.readFileSync(path.join(dir, 'starts.txt'), 'utf8').length;
    // Back-off 1, 2, 4 s: a try at its time and one an edit brought forward, per wait.
    assert.ok(starts <= 6, `${starts} start attempts in 6 s of touches every 250 ms`);

    // A tenant that fixes its app after a few failed tries sees the fix at once.
    const fix = path.join(site.root, 'fix');
    assert.equal((await site.get('fix', '/')).status, 502);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await site.get('fix', '/')).status, 502);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await site.get('fix', '/')).status, 502, 'three failed tries: the next waits 4 s');
    fs.writeFileSync(path.join(fix, 'app.py'), WORKING);
    const r = await site.get('fix', '/');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'fixed');
  });
});
