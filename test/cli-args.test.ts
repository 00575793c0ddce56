import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { apache13Conf, apache24Conf } from '../sidecar/src/sandbox/apache-conf';
import { LODGED_OPTIONS, SANDBOX_OPTIONS, UsageError, lodgedArgs, readArgs, sandboxArgs } from '../sidecar/src/cli/args';

const sandbox = (argv: string[]) => readArgs(argv, SANDBOX_OPTIONS, sandboxArgs);
const lodged = (argv: string[]) => readArgs(argv, LODGED_OPTIONS, lodgedArgs);

function usage(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof UsageError && pattern.test(err.message));
}

test('lodge sandbox: options are typed, defaults filled', () => {
  assert.deepEqual(sandbox(['--root', 'x', '--port', '8081', '--apache', '1.3', '--keep']), {
    help: false, root: 'x', port: 8081, apache: '1.3', keep: true, demo: false, 'no-access-log': false, h2c: false, bare: false,
  });
  assert.equal(sandbox(['--bare']).bare, true);
  assert.equal(sandbox(['--h2c']).h2c, true);
  assert.equal(sandbox([]).port, 8080);
  assert.equal(sandbox(['--no-access-log'])['no-access-log'], true);
  assert.equal(sandbox(['-h']).help, true);
});

test('lodge sandbox: a bad value says what the option takes and what came', () => {
  usage(() => sandbox(['--port', '99999']), /--port takes a port number from 1 to 65535, got '99999'/);
  usage(() => sandbox(['--port', '80x']), /--port takes a port number/);
  usage(() => sandbox(['--port', '0']), /--port takes a port number/);
  usage(() => sandbox(['--apache', '2.2']), /--apache takes 2\.4 or 1\.3, got '2\.2'/);
  usage(() => sandbox(['--colour']), /Unknown option '--colour'/);
  usage(() => sandbox(['--root']), /--root/);
  usage(() => sandbox(['stray']), /stray/);
});

test('lodged: --config and an absolute --socket, nothing else', () => {
  assert.deepEqual(lodged(['--config', '/etc/lodge/lodged.json', '--socket', '/run/l.sock']), { help: false, config: '/etc/lodge/lodged.json', socket: '/run/l.sock' });
  usage(() => lodged(['--socket', 'rel.sock']), /--socket takes an absolute path, got 'rel\.sock'/);
  usage(() => lodged(['--verbose']), /Unknown option '--verbose'/);
  usage(() => lodged(['--config']), /--config/);
});

test('lodged: --python and --node (the host\'s LodgeRuntimes) are absolute paths', () => {
  assert.deepEqual(lodged(['--python', '/opt/py/bin/python3', '--node', '/opt/node/bin/node']), { help: false, python: '/opt/py/bin/python3', node: '/opt/node/bin/node' });
  usage(() => lodged(['--node', 'node']), /--node takes an absolute path, got 'node'/);
  usage(() => lodged(['--python', 'python3']), /--python takes an absolute path, got 'python3'/);
});

test('lodge sandbox --no-access-log: the generated Apache configuration has no CustomLog, on 2.4 and 1.3', () => {
  const o = { runDir: '/run/x', port: 8080, modulePath: '/m.so', socket: '/run/x/s', tenants: [], indexDir: '/run/x/i' };
  for (const conf of [apache24Conf, apache13Conf]) {
    assert.match(conf(o), /^CustomLog /m, 'an access log by default');
    assert.doesNotMatch(conf({ ...o, accessLog: false }), /CustomLog/);
  }
});

test('lodge sandbox --bare: Apache 2.4 loads mpm_event, authz_core and mod_lodge only, follows links as 2.4 does by default', () => {
  const o = { runDir: '/run/x', port: 8080, modulePath: '/m.so', socket: '/run/x/s', tenants: [{ name: 't', dir: '/srv/t' }], indexDir: '/run/x/i' };
  const modules = (conf: string) => [...conf.matchAll(/^LoadModule (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(modules(apache24Conf({ ...o, bare: true })), ['mpm_event_module', 'authz_core_module', 'lodge_module']);
  assert.doesNotMatch(apache24Conf({ ...o, bare: true }), /TypesConfig|DirectoryIndex|SymLinksIfOwnerMatch/);
  assert.match(apache24Conf({ ...o, bare: true }), /^\s+Options FollowSymLinks$/m);
  const full = apache24Conf(o);
  assert.ok(modules(full).includes('mime_module') && modules(full).includes('headers_module'), 'the full set by default');
  assert.match(full, /^\s+Options -Indexes \+SymLinksIfOwnerMatch$/m, 'a host serving others checks links\' owners');
});
