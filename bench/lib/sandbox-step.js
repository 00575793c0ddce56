'use strict';
// What the bench's steps in a real sandbox share (status-cost.js, cold-start.js):
// their arguments, the tenant's processes, and the sandbox's life: started, stopped
// at the end, on SIGINT/SIGTERM and on any failure, its logs kept beside the result.

const fs = require('node:fs');
const path = require('node:path');
const { startSandbox } = require(path.join(__dirname, '..', '..', 'dist', 'sidecar', 'src', 'sandbox', 'sandbox'));

/**
 * A step's `--key value` arguments: --work DIR --out FILE --user NAME --port P and the
 * step's own count (`--apps N`, `--tries N`), all required; port and count as numbers.
 */
function stepArgs(step, argv, countKey) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`${step}: bad arguments near '${argv[i]}'`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['work', 'out', 'user', 'port', countKey]) if (!out[k]) throw new Error(`${step}: --${k} is required`);
  return { work: out.work, out: out.out, user: out.user, port: Number(out.port), [countKey]: Number(out[countKey]) };
}

/** A step's progress lines, to stderr, with the time. */
const sayer = (step) => (msg) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${step}: ${msg}\n`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Pids of the processes running as uid now. */
function processesOf(uid) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${e}/status`, 'utf8'));
      if (m && Number(m[1]) === uid) out.push(Number(e));
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/**
 * Runs `measure(sb)` in a sandbox started with `sandbox` (its options), writes what
 * it returns as JSON to `out`, and copies the sandbox's `logs` beside it, named
 * `<prefix>-<log>`. The pids of the sandbox's Apache and lodged go to work/pids for
 * run.sh to check.
 */
async function inSandbox({ work, out, prefix, sandbox, logs, say }, measure) {
  const sb = await startSandbox({ ...sandbox, keep: true });
  let stopping;
  const stop = () => (stopping ??= sb.stop());
  const onSignal = (sig) => {
    say(`${sig}: stopping the sandbox`);
    stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result;
  try {
    if (!sb.lodged.pid) throw new Error('lodged wrote no pid file');
    fs.writeFileSync(path.join(work, 'pids'), `${sb.apache.pid}\n${sb.lodged.pid}\n`);
    result = await measure(sb);
  } finally {
    for (const f of logs) {
      try {
        fs.copyFileSync(path.join(sb.runDir, f), path.join(path.dirname(out), `${prefix}-${f}`));
      } catch {
        // a log that was never written
      }
    }
    await stop();
  }
  fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
}

module.exports = { stepArgs, sayer, sleep, processesOf, inSandbox };
