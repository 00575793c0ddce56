import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as constants from '../sidecar/src/protocol/constants';

// The protocol's numbers have one source, sidecar/src/protocol/protocol.json, and
// scripts/gen-protocol.js writes the C, TypeScript and Python copies and PROTOCOL.md's
// tables from it. These tests hold every copy to it: as committed, as each language
// reads it (compiled, imported), and with no other file defining those names again.

const ROOT = path.join(__dirname, '..', '..');

interface Named { name: string; value: number }
interface Constant extends Named { kind: 'bytes' | 'seconds' | 'count' | 'status' }
interface Source { frames: Named[]; flags: Named[]; verdicts: Named[]; constants: Constant[] }
interface Generator {
  SOURCE: string;
  OUT: { c: string; ts: string; py: string; md: string };
  load(text: string): Source;
  render(root?: string): Record<string, string>;
  tsName(c: Constant): string;
}

// Plain JavaScript outside the TypeScript tree (build.js runs it before tsc).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const gen = require(path.join(ROOT, 'scripts', 'gen-protocol.js')) as Generator;
const source = gen.load(fs.readFileSync(path.join(ROOT, gen.SOURCE), 'utf8'));

type Lang = 'c' | 'ts' | 'py';

/** Every name and value of the source, as the language spells it (TypeScript: ms). */
function expected(lang: Lang): Map<string, number> {
  const frame = { c: 'LODGE_FRAME_', ts: 'FrameType.', py: '' }[lang];
  const flag = { c: 'LODGE_APP_', ts: 'APP_', py: 'APP_' }[lang];
  const verdict = { c: 'LODGE_RELEASE_', ts: 'Release.', py: 'RELEASE_' }[lang];
  const out = new Map<string, number>();
  for (const f of source.frames) out.set(frame + f.name, f.value);
  for (const f of source.flags) out.set(flag + f.name, f.value);
  for (const v of source.verdicts) out.set(verdict + v.name, v.value);
  for (const c of source.constants) {
    if (lang === 'ts') out.set(gen.tsName(c), c.kind === 'seconds' ? c.value * 1000 : c.value);
    else out.set((lang === 'c' ? 'LODGE_' : '') + c.name, c.value);
  }
  return out;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...opts });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.error?.message ?? ''}${r.stderr}`);
  return r.stdout;
}

function lines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.trim().split('\n')) {
    const [name, value] = line.split(' ');
    out.set(name, Number(value));
  }
  return out;
}

test('every copy generated from protocol.json is committed as the generator writes it', () => {
  for (const [rel, text] of Object.entries(gen.render(ROOT))) {
    const committed = fs.readFileSync(path.join(ROOT, rel), 'utf8');
    assert.ok(committed === text, `${rel} differs from what scripts/gen-protocol.js writes from ${gen.SOURCE}: run node scripts/gen-protocol.js`);
  }
});

test('mod_lodge compiles lodge_protocol.h to the numbers of protocol.json, and names every frame', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lodge-protocol-'));
  try {
    const names = [...expected('c').keys()];
    const program = [
      '#include <stdio.h>',
      '#include "lodge_protocol.h"',
      '#define SHOW(name, code) printf("LIST_" #name " %lu\\n", (unsigned long)(code));',
      'int main(void)',
      '{',
      ...names.map((n) => `    printf("${n} %lu\\n", (unsigned long)(${n}));`),
      '    LODGE_FRAME_LIST(SHOW)',
      '    return 0;',
      '}',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'show.c'), program);
    run('cc', ['-std=c99', '-Wall', '-Wextra', '-Werror', '-I', path.join(ROOT, 'native', 'apache'), '-o', path.join(dir, 'show'), path.join(dir, 'show.c')]);
    const got = lines(run(path.join(dir, 'show'), []));
    const list = new Map([...got].filter(([n]) => n.startsWith('LIST_')).map(([n, v]) => [`LODGE_FRAME_${n.slice(5)}`, v]));
    for (const n of list.keys()) got.delete(`LIST_${n.slice('LODGE_FRAME_'.length)}`);
    assert.deepEqual(got, expected('c'));
    assert.deepEqual(list, new Map(source.frames.map((f) => [`LODGE_FRAME_${f.name}`, f.value])), 'LODGE_FRAME_LIST');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('lodged imports the numbers of protocol.json, and no more', () => {
  const got = new Map<string, number>();
  for (const [name, value] of Object.entries(constants)) {
    if (typeof value === 'number') got.set(name, value);
    else for (const [k, v] of Object.entries(value)) got.set(`${name}.${k}`, v);
  }
  assert.deepEqual(got, expected('ts'));
});

test('the worker imports the numbers of protocol.json, and its frame header is that size', () => {
  const script = [
    'import json, sys',
    'from _lodge_runtime import constants, frames',
    'out = {k: v for k, v in vars(constants).items() if k.isupper()}',
    "out['HDR.size'] = frames.HDR.size",
    'print(json.dumps(out))',
  ].join('\n');
  const got = JSON.parse(run('python3', ['-I', '-B', '-c', `import sys; sys.path.insert(0, ${JSON.stringify(path.join(ROOT, 'sidecar', 'runtimes'))})\n${script}`])) as Record<string, number>;
  assert.equal(got['HDR.size'], constants.FRAME_HEADER_SIZE, 'frames.HDR packs a header of FRAME_HEADER_SIZE bytes');
  delete got['HDR.size'];
  assert.deepEqual(new Map(Object.entries(got)), expected('py'));
});

function filesUnder(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== '__pycache__') out.push(...filesUnder(rel, ext));
    else if (e.isFile() && e.name.endsWith(ext)) out.push(rel);
  }
  return out;
}

test('no file defines one of the generated names again (no hand copy)', () => {
  const copies: string[] = [];
  const scan = (files: string[], pattern: RegExp, names: Set<string>, generated: string) => {
    for (const rel of files.filter((f) => f !== generated)) {
      for (const m of fs.readFileSync(path.join(ROOT, rel), 'utf8').matchAll(pattern)) {
        if (names.has(m[1])) copies.push(`${rel}: ${m[1]}`);
      }
    }
  };
  const top = (lang: Lang) => new Set([...expected(lang).keys()].map((n) => n.split('.')[0]));
  const cFiles = [...filesUnder('native/apache', '.c'), ...filesUnder('native/apache', '.h'), ...filesUnder('native/spawn', '.c')];
  scan(cFiles, /^\s*#\s*define\s+([A-Z][A-Z0-9_]*)\b/gm, top('c'), gen.OUT.c);
  scan(filesUnder('sidecar/src', '.ts'), /\b(?:const|let|var)\s+([A-Z][A-Za-z0-9_]*)\s*[:=]/g, top('ts'), gen.OUT.ts);
  scan(filesUnder('sidecar/runtimes', '.py'), /^\s*([A-Z][A-Z0-9_]*)\s*=[^=]/gm, top('py'), gen.OUT.py);
  assert.deepEqual(copies, [], 'these define a name of protocol.json by hand: take it from the generated file instead');
});

test('PROTOCOL.md states the codes, flags and limits of protocol.json wherever it names them', () => {
  const md = fs.readFileSync(path.join(ROOT, gen.OUT.md), 'utf8');
  const frames = new Map(source.frames.map((f) => [f.name, f.value]));
  const flags = new Map(source.flags.map((f) => [f.name, f.value]));
  const wrong: string[] = [];
  // Any table row of a frame (the generated one, and START's in "Worker start").
  for (const m of md.matchAll(/^\| (0x[0-9a-f]{2}) \| `([A-Z_]+)` \|/gm)) {
    if (frames.get(m[2]) !== Number(m[1])) wrong.push(`row ${m[0]}: ${m[2]} is ${frames.get(m[2])}`);
  }
  // Prose such as "`BORROW` 0x01" or "(`TUNNEL` = 0x04)".
  for (const m of md.matchAll(/`([A-Z_]+)`(?: =)? (0x[0-9a-f]{2})\b/g)) {
    const known = flags.get(m[1]) ?? frames.get(m[1]);
    if (known !== Number(m[2])) wrong.push(`'${m[0]}': ${m[1]} is ${known}`);
  }
  // Prose that gives a value with its name: "16 MiB (`FRAME_MAX`)", "5 s, `ABORT_GRACE`".
  const unit: Record<string, number> = { KiB: 1024, MiB: 1024 * 1024, s: 1, bytes: 1, '': 1 };
  const byName = new Map(source.constants.map((c) => [c.name, c.value]));
  let stated = 0;
  for (const m of md.matchAll(/(\d+)(?: (KiB|MiB|s|bytes))?(?:,| \() ?`(?:LODGE_)?([A-Z][A-Z0-9_]*)`/g)) {
    if (!byName.has(m[3])) continue;
    stated++;
    const value = Number(m[1]) * unit[m[2] ?? ''];
    if (value !== byName.get(m[3])) wrong.push(`'${m[0]}': ${m[3]} is ${byName.get(m[3])}`);
  }
  assert.deepEqual(wrong, []);
  assert.ok(stated >= 20, `PROTOCOL.md's prose gives ${stated} values with their names`);
});

test('each mod_lodge log number names one message', () => {
  const dir = path.join(__dirname, '..', '..', 'native', 'apache');
  const seen = new Map<string, string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.c'))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const m of text.matchAll(/LODGE_LOGNO\((\d+)\)\s*"([^"]*)"/g)) {
      const [, no, message] = m;
      const before = seen.get(no);
      // The same message may be logged from two places (one per Apache version).
      assert.ok(before === undefined || before === message, `LG${no} is used for '${before}' and for '${message}' (${file})`);
      seen.set(no, message);
    }
  }
  assert.ok(seen.size > 40, `found ${seen.size} log numbers`);
});
