import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Site, forEachApache, startSite } from './helpers/site';

// A real tenant whose worker writes random frames (test/fuzz-tenants/hostile_app.py)
// on its protocol socket, seeded per request, against a real Apache and lodged. Every
// request gets an answer, Apache and lodged stay up (lodged's pid does not change),
// the neighbour answers 200 after each, and neither log shows a crash or an error
// lodged did not expect. `npm test` runs a few requests; `npm run fuzz` sets
// LODGE_FUZZ_HOSTILE_REQUESTS (and _SECONDS, the bound in time) for a long run.
const REQUESTS = Number(process.env.LODGE_FUZZ_HOSTILE_REQUESTS ?? 30);
const SECONDS = Number(process.env.LODGE_FUZZ_HOSTILE_SECONDS ?? 300);
const FIRST_SEED = Number(process.env.LODGE_FUZZ_HOSTILE_SEED ?? 1);
const TIMEOUT = 3; // the hostile tenant's LodgeTimeout
const ANSWER_MS = 20_000; // far past what LodgeTimeout lets mod_lodge and lodged take to answer

const hostileApp = fs.readFileSync(path.join(__dirname, '..', '..', 'test', 'fuzz-tenants', 'hostile_app.py'), 'utf8');
const regressions = path.join(__dirname, '..', '..', 'test', 'fuzz-regressions');

interface Answer {
  status: number; // 0: the connection closed before a status line
  bytes: number;
  error?: string;
}

/**
 * One HTTP/1.0 request on a raw socket, read to the server's close: a broken stream
 * may cut a response short, which a strict client would report as an error, but the
 * status line (or its absence) is what matters here.
 */
function ask(port: number, host: string, method: string, target: string, body = ''): Promise<Answer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => {
      c.write(`${method} ${target} HTTP/1.0\r\nHost: ${host}:${port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    let error: string | undefined;
    c.on('data', (d) => parts.push(d));
    c.on('error', (err) => { error = err.message; });
    c.setTimeout(ANSWER_MS, () => { error = `no answer within ${ANSWER_MS} ms`; c.destroy(); });
    c.on('close', () => {
      const all = Buffer.concat(parts);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.subarray(0, 16).toString('latin1'));
      resolve({ status: m ? Number(m[1]) : 0, bytes: all.length, error });
    });
  });
}

// What a crash of lodged's code or of an Apache child leaves in the logs.
const LODGED_CRASH = /^\s+at .+[(:]\d+|Uncaught|TypeError|RangeError|ReferenceError|SyntaxError|FATAL|heap out of memory/;
const APACHE_CRASH = /Segmentation fault|exit signal|AddressSanitizer|double free|core dumped|\bAborted\b/;

function tail(log: string): string {
  return log.split('\n').slice(-12).join('\n');
}

/** The first such line, with what led to it and its stack, for the report. */
function crash(log: string, re: RegExp): string | undefined {
  const lines = log.split('\n');
  const i = lines.findIndex((line) => re.test(line));
  return i < 0 ? undefined : lines.slice(Math.max(0, i - 8), i + 12).join('\n');
}

forEachApache((apache) => {
  let site: Site;
  before(async () => {
    site = await startSite({
      hostile: { '.htaccess': `LodgeApp wsgi app.py\nLodgeTimeout ${TIMEOUT}\nLodgeProcesses 2\n`, 'app.py': hostileApp },
      neighbour: {
        '.htaccess': 'LodgeApp wsgi app.py\n',
        'app.py': 'def application(e, s):\n    s("200 OK", [("Content-Type", "text/plain")])\n    return [b"neighbour"]\n',
      },
    }, undefined, apache);
  });
  after(async () => site?.stop());

  test('every saved hostile case (test/fuzz-regressions/hostile-*.json): each answered, no error lodged did not expect', async () => {
    assert.equal((await site.get('neighbour', '/')).status, 200);
    const lodgedPid = site.sb.lodged.pid;
    const cases = fs.readdirSync(regressions).filter((f) => f.startsWith('hostile-') && f.endsWith('.json'));
    assert.ok(cases.length > 0, `cases in ${regressions}`);
    for (const file of cases) {
      const saved = JSON.parse(fs.readFileSync(path.join(regressions, file), 'utf8'));
      for (const pause of saved.pauses ?? [0]) {
        const replay = Buffer.from(JSON.stringify({ writes: saved.writes, pause, then: saved.then })).toString('base64url');
        const post = saved.method === 'POST';
        const a = await ask(site.sb.port, 'hostile.localhost', post ? 'POST' : 'GET', `/?replay=${replay}`, post ? saved.body ?? 'x' : '');
        assert.equal(a.error, undefined, `${file}, pause ${pause}: ${a.error}`);
        assert.ok(a.status >= 200 && a.status <= 599, `${file}, pause ${pause}: no status line in the ${a.bytes} bytes Apache sent; its log ends:\n${tail(site.errorLog())}`);
        assert.equal((await site.get('neighbour', '/')).status, 200, `${file}, pause ${pause}: the neighbour`);
      }
    }
    assert.equal(site.sb.lodged.pid, lodgedPid, 'lodged was not restarted');
    assert.doesNotMatch(site.tenantLog('hostile'), /Traceback/, 'each case was replayed as saved');
    assert.equal(crash(site.lodgedLog(), LODGED_CRASH), undefined, 'lodged met no error it did not expect');
    assert.equal(crash(site.errorLog(), APACHE_CRASH), undefined, 'no Apache child crashed');
  });

  test(`a worker writing random frames on its socket (${REQUESTS} seeded requests): each answered, nobody else hurt`, async (t) => {
    const first = await site.get('neighbour', '/');
    assert.equal(first.status, 200);
    const lodgedPid = site.sb.lodged.pid;
    assert.ok(lodgedPid, 'lodged wrote its pid');
    const statuses = new Map<number, number>();
    const unanswered: string[] = [];
    const until = Date.now() + SECONDS * 1000;
    const started = Date.now();
    let done = 0;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + REQUESTS && Date.now() < until; seed++) {
      // A request with a body goes through lodged; one without may be lent to Apache.
      const post = seed % 3 === 0;
      const a = await ask(site.sb.port, 'hostile.localhost', post ? 'POST' : 'GET', `/?seed=${seed}`, post ? 'x'.repeat(seed % 50) : '');
      // A request left unanswered is noted and the run goes on, so that a long run
      // tells every seed that fails; the rest stop it at once.
      if (a.error !== undefined) unanswered.push(`seed ${seed} (${post ? 'POST' : 'GET'}): ${a.error}`);
      else if (!(a.status >= 200 && a.status <= 599)) unanswered.push(`seed ${seed} (${post ? 'POST' : 'GET'}): no status line in the ${a.bytes} bytes Apache sent`);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      const n = await site.get('neighbour', '/');
      assert.equal(n.status, 200, `seed ${seed}: the neighbour answered ${n.status}`);
      assert.equal(n.text, 'neighbour');
      assert.equal(site.sb.lodged.pid, lodgedPid, `seed ${seed}: lodged was restarted`);
      done++;
    }
    const secs = (Date.now() - started) / 1000;
    const spread = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ');
    t.diagnostic(`hostile ${apache}: ${done} requests in ${secs.toFixed(1)} s (${(done / secs).toFixed(1)}/s), seeds ${FIRST_SEED}-${FIRST_SEED + done - 1}; statuses ${spread}${unanswered.length ? `; ${unanswered.length} unanswered` : ''}`);
    assert.ok(done === REQUESTS || Date.now() >= until, 'every request was made, or the time bound was reached');
    assert.ok(done > 0);
    // All that went wrong, in one assertion, so that one failure does not hide another.
    const problems: string[] = [];
    if (unanswered.length) problems.push(`${unanswered.length} of ${done} requests got no answer: ${unanswered.slice(0, 20).join('; ')}`);
    const lodgedCrash = crash(site.lodgedLog(), LODGED_CRASH);
    if (lodgedCrash) problems.push(`lodged met an error it did not expect:\n${lodgedCrash}`);
    const apacheCrash = crash(site.errorLog(), APACHE_CRASH);
    if (apacheCrash) problems.push(`an Apache child crashed:\n${apacheCrash}`);
    assert.deepEqual(problems, []);
    // The hostile tenant's broken streams were seen for what they are.
    assert.match(site.lodgedLog() + site.errorLog(), /frame|protocol|worker/i);
  });
});
