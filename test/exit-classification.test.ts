import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ExitFacts, classifyExit, exitMeaning } from '../sidecar/src/pool/exit-classification';
import { MemoryLimitError, WorkerDiedError } from '../sidecar/src/errors';

// Every branch of a worker's exit, without a process: the facts worker.ts gathers, by hand.
const base: ExitFacts = { pid: 42, app: '/srv/a/app.py', code: 0, signal: null, wasStarting: false, killedOnPurpose: false };
const oom = {
  err: new MemoryLimitError('/srv/a/app.py: worker 42 stopped for memory: the OOM killer (LodgeMemory 64 MiB, peak 70 MiB)'),
  tenant: 'worker 42 stopped for memory: the OOM killer (LodgeMemory 64 MiB)',
};

test('a segfault during a request is a crash: the request gets 502, the tenant reads which request and how', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGSEGV', request: 'GET /segfault' });
  assert.equal(out.reason, 'crash');
  assert.equal(out.how, 'was killed by SIGSEGV');
  assert.equal(out.meaning, 'signal');
  assert.ok(out.requestError instanceof WorkerDiedError);
  assert.equal(out.requestError.status, 502);
  assert.equal(out.tenantMessage, 'GET /segfault: worker 42 was killed by SIGSEGV during the request');
  assert.equal(out.hostLog, 'worker 42 (/srv/a/app.py) was killed by SIGSEGV during a request');
  assert.equal(out.restart, 'replace');
  assert.equal(out.startFailure, undefined);
});

test('an app that calls exit(3) during a request crashed, whatever the code means for the runtime', () => {
  const out = classifyExit({ ...base, code: 3, request: 'GET /exit' });
  assert.equal(out.reason, 'crash');
  assert.equal(out.meaning, 'app-failed');
  assert.equal(out.tenantMessage, 'GET /exit: worker 42 exited with status 3 during the request');
  assert.equal(out.requestError?.status, 502);
});

test('a worker lodged killed during a request: the kill reason stays, the tenant is not told twice', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGKILL', killedOnPurpose: true, killedFor: 'timeout', request: 'GET /slow' });
  assert.equal(out.reason, 'timeout');
  assert.equal(out.tenantMessage, undefined, 'the watchdog told the tenant when it killed');
  // The request's answer was the watchdog's (504); this one is only for a request that had none.
  assert.ok(out.requestError instanceof WorkerDiedError);
  assert.match(out.hostLog!, /worker 42 .* was killed by SIGKILL during a request/);
});

test('the OOM killer during a request: memory, and the memory error answers it', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGKILL', memoryCause: oom, request: 'POST /big' });
  assert.equal(out.reason, 'memory');
  assert.equal(out.requestError, oom.err);
  assert.equal(out.hostLog, oom.err.message);
  assert.equal(out.tenantMessage, `POST /big: ${oom.tenant}`);
});

test('the OOM killer wins over a kill lodged had begun: the reason is memory', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGKILL', killedOnPurpose: true, killedFor: 'cpu', memoryCause: oom, request: 'GET /x' });
  assert.equal(out.reason, 'memory');
  assert.equal(out.tenantMessage, undefined);
});

test('an idle worker that dies by itself is a crash the tenant hears of', () => {
  const out = classifyExit({ ...base, code: 1 });
  assert.equal(out.reason, 'crash');
  assert.equal(out.tenantMessage, 'worker 42 exited with status 1 while idle');
  assert.equal(out.hostLog, '/srv/a/app.py: worker 42 exited with status 1 while idle');
  assert.equal(out.requestError, undefined);
  assert.equal(out.restart, 'replace');
});

test('an idle worker the OOM killer took: memory, told', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGKILL', memoryCause: oom });
  assert.equal(out.reason, 'memory');
  assert.equal(out.tenantMessage, oom.tenant);
});

test('a retired worker that leaves with status 0 is no event', () => {
  const out = classifyExit({ ...base, code: 0 });
  assert.deepEqual(out, { reason: undefined, how: 'exited with status 0', meaning: 'clean', restart: 'replace' });
});

test('a worker lodged killed while idle (admin, pool stopping) keeps its reason and says nothing more', () => {
  assert.equal(classifyExit({ ...base, code: null, signal: 'SIGKILL', killedOnPurpose: true, killedFor: 'admin' }).reason, 'admin');
  const stopping = classifyExit({ ...base, code: null, signal: 'SIGKILL', killedOnPurpose: true });
  assert.equal(stopping.reason, undefined);
  assert.equal(stopping.tenantMessage, undefined);
  assert.equal(stopping.hostLog, undefined);
});

test('an app that sent FAIL: its message is the start failure, back off, the tenant read it already', () => {
  const out = classifyExit({ ...base, code: 3, wasStarting: true, sentFail: true, failMessage: 'ImportError: no module named flask' });
  assert.equal(out.startFailure, 'ImportError: no module named flask');
  assert.equal(out.tenantMessage, undefined);
  assert.equal(out.restart, 'backoff');
  assert.equal(out.reason, undefined, 'a start failure is no crash of a serving worker');
  assert.equal(out.requestError, undefined);
});

test('a start that died without FAIL: the last line of stderr says why, the tenant hears how', () => {
  const out = classifyExit({ ...base, code: 1, wasStarting: true, earlyStderr: 'Fatal Python error: init\nModuleNotFoundError: encodings\n\n' });
  assert.equal(out.startFailure, 'ModuleNotFoundError: encodings');
  assert.equal(out.tenantMessage, 'the app stopped while loading, before it was ready: worker 42 exited with status 1');
  assert.equal(out.reason, undefined);
});

test('what a starting worker wrote to stderr reaches the answer only as tenant text (controls escaped, bounded)', () => {
  const out = classifyExit({ ...base, code: 1, wasStarting: true, earlyStderr: `boom\x1b[2J${'x'.repeat(10_000)}` });
  assert.doesNotMatch(out.startFailure!, /\x1b/);
  assert.ok(out.startFailure!.length < 10_000);
});

test('a start lodged stopped (too slow, bad frame): its own reason, nothing more to the tenant', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGKILL', wasStarting: true, killedOnPurpose: true, killedFor: 'start', failMessage: 'app.py did not finish loading within 60 s' });
  assert.equal(out.startFailure, 'app.py did not finish loading within 60 s');
  assert.equal(out.reason, 'start');
  assert.equal(out.tenantMessage, undefined);
  assert.equal(out.restart, 'backoff');
});

test('a start the OOM killer stopped: the memory verdict is the failure and the host hears of it', () => {
  const out = classifyExit({ ...base, code: null, signal: 'SIGKILL', wasStarting: true, memoryCause: oom, failMessage: 'ignored' });
  assert.equal(out.startFailure, oom.tenant);
  assert.equal(out.hostLog, oom.err.message);
  assert.equal(out.reason, 'memory');
  assert.equal(out.tenantMessage, `the app stopped while loading, before it was ready: ${oom.tenant}`);
});

test('a start that failed without a word is named by its exit status: lodge-spawn 121, app 3, else how', () => {
  assert.equal(classifyExit({ ...base, code: 121, wasStarting: true }).startFailure, 'the worker could not be started as the tenant (lodge-spawn exited with status 121)');
  assert.equal(classifyExit({ ...base, code: 3, wasStarting: true }).startFailure, 'the app could not be loaded (worker exited with status 3)');
  assert.equal(classifyExit({ ...base, code: 9, wasStarting: true }).startFailure, 'worker exited with status 9 before it was ready');
  assert.equal(classifyExit({ ...base, code: null, signal: 'SIGABRT', wasStarting: true }).startFailure, 'worker was killed by SIGABRT before it was ready');
});

test('exit statuses of lodged programs read as their meaning; a signal is a signal whatever the code', () => {
  assert.equal(exitMeaning(0, null), 'clean');
  assert.equal(exitMeaning(2, null), 'protocol');
  assert.equal(exitMeaning(3, null), 'app-failed');
  assert.equal(exitMeaning(121, null), 'spawn-failed');
  assert.equal(exitMeaning(7, null), 'status');
  assert.equal(exitMeaning(null, 'SIGTERM'), 'signal');
});
