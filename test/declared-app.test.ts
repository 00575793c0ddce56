import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseDeclaration, splitArgs } from '../sidecar/src/pool/declared-app';

// What lodged reads from an app's own file: the Lodge lines as Apache would take them.

test('an .htaccess declares its app, LodgeEnv and limits; later lines win; comments and other sections do not count', () => {
  const d = parseDeclaration([
    '# LodgeApp wsgi commented.py',
    'RewriteEngine On',
    'LodgeApp wsgi old.py',
    'lodgeapp  wsgi  "site/app.py:application"',
    'LodgeEnv GREETING "hello world"',
    'LodgeEnv GREETING again',
    'LodgeTimeout 45',
    'LodgeMemory 256M',
    '<IfModule mod_lodge.c>',
    '  LodgeProcesses 3',
    '</IfModule>',
    '<Files "x.py">',
    '  LodgeEnv HIDDEN 1',
    '</Files>',
    'LodgeCPU \\',
    '  9',
  ].join('\n'));
  assert.deepEqual(d, {
    kind: 'wsgi',
    entry: 'site/app.py',
    callable: 'application',
    env: { GREETING: 'again' },
    limits: { timeout: 45, memory: 256 * 1024 * 1024, processes: 3, cpu: 9 },
  });
});

test('a file with no LodgeApp declares nothing; a server config counts only its <Directory> for the app', () => {
  assert.equal(parseDeclaration('LodgeTimeout 5\nLodgeEnv A b\n'), undefined);
  const conf = [
    'LodgeApp wsgi top.py',
    '<Directory "/srv/other">',
    '  LodgeApp wsgi other.py',
    '</Directory>',
    '<Directory /srv/shop/>',
    '  LodgeApp wsgi shop.py',
    '  LodgeEnv MODE prod',
    '</Directory>',
  ].join('\n');
  const d = parseDeclaration(conf, '/srv/shop');
  assert.equal(d?.entry, 'shop.py');
  assert.deepEqual(d?.env, { MODE: 'prod' });
  assert.equal(parseDeclaration(conf, '/srv/none'), undefined);
});

test('arguments split as Apache splits them', () => {
  assert.deepEqual(splitArgs(`a "b c" 'd e' f\\"g "h\\"i"`), ['a', 'b c', 'd e', 'f\\"g', 'h"i']);
});
