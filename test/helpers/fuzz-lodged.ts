import * as fc from 'fast-check';
import { FrameError, FrameReader } from '../../sidecar/src/protocol/frame-reader';
import { FrameScanner } from '../../sidecar/src/protocol/frame-scanner';
import { FRAME_MAX, FrameType, FRAME_HEADER_SIZE, PairsError, encodeFrame, encodePairs } from '../../sidecar/src/protocol/frames';
import { parseAppSpec } from '../../sidecar/src/pool/app-spec';
import { checkConfig } from '../../sidecar/src/config/load';
import { LodgeError } from '../../sidecar/src/errors';
import { openLog } from '../../sidecar/src/log';

// lodged's stream readers and APP parser, as properties over random bytes. The same
// targets run briefly in `npm test` (test/fuzz-lodged.test.ts), for a million inputs
// each in `npm run fuzz` (scripts/fuzz.js), and on each saved case in
// test/fuzz-regressions/. An input is plain data (bytes, where to cut them, a size
// limit), so a failing one is saved as JSON and replayed without fast-check.

export interface FuzzInput {
  bytes: Buffer;
  /** Chunk boundaries, ascending offsets into bytes. */
  cuts: number[];
  /** The FrameReader's payload limit. */
  limit: number;
}

export interface FuzzTarget {
  input: fc.Arbitrary<FuzzInput>;
  /** Throws (an assertion) when the property does not hold for the input. */
  check(input: FuzzInput): void;
}

class PropertyFailed extends Error {}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
}

// The message is built only on a failure: most inputs pass, and a stack costs.
function expect(cond: boolean, what: () => string): void {
  if (!cond) throw new PropertyFailed(what());
}

const KNOWN_TYPES = Object.values(FrameType) as number[];

const frameType = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_TYPES) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

function header(type: number, length: number, flags = 0): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_SIZE);
  h[0] = type;
  h[1] = flags;
  h.writeUInt32BE(length >>> 0, 4);
  return h;
}

/** One piece of a stream: a whole frame, a header promising more, or garbage. */
const streamPart: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(frameType, fc.uint8Array({ maxLength: 40 })).map(([t, p]) => encodeFrame(t, Buffer.from(p))) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(frameType, fc.constantFrom(FRAME_MAX, FRAME_MAX + 1, 0xffffffff, 1000, 65), fc.integer({ min: 0, max: 255 }))
      .map(([t, len, flags]) => header(t, len, flags)),
  },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 24 }).map((b) => Buffer.from(b)) },
);

const stream = (maxParts: number) => fc.array(streamPart, { maxLength: maxParts }).map((parts) => Buffer.concat(parts));

function withCuts(bytes: fc.Arbitrary<Buffer>, limit: fc.Arbitrary<number>): fc.Arbitrary<FuzzInput> {
  return fc.tuple(bytes, fc.array(fc.nat(), { maxLength: 12 }), limit).map(([b, raw, lim]) => ({
    bytes: b,
    cuts: [...new Set(raw.map((c) => (b.length ? c % (b.length + 1) : 0)))].sort((x, y) => x - y),
    limit: lim,
  }));
}

function chunksAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  return out;
}

// ------------------------------------------------------------------ FrameReader

interface Decoded {
  frames: Buffer[];
  error?: string;
  idle: boolean;
}

/** Reads the chunks in turn; frames are compared with `want` as they come, when given. */
function decode(chunks: Buffer[], limit: number, want?: Decoded, how = ''): Decoded {
  const frames: Buffer[] = [];
  const reader = new FrameReader((type, frame) => {
    expect(frame[0] === type, () => `${how}: handler type is the frame's first byte`);
    if (want) {
      const i = frames.length;
      expect(i < want.frames.length && frame.equals(want.frames[i]), () => `${how}: frame ${i} differs from the whole stream's`);
    }
    frames.push(frame);
  }, limit);
  for (const c of chunks) {
    try {
      reader.push(c);
    } catch (err) {
      if (err instanceof PropertyFailed) throw err;
      expect(err instanceof FrameError, () => `${how}: only FrameError is thrown, got ${describe(err)}`);
      return { frames, error: (err as Error).message, idle: reader.idle };
    }
  }
  return { frames, idle: reader.idle };
}

/** The stream read as frames by a plain model: what any chunking must give. */
function model(bytes: Buffer, limit: number): Decoded {
  const frames: Buffer[] = [];
  let at = 0;
  while (bytes.length - at >= FRAME_HEADER_SIZE) {
    const len = bytes.readUInt32BE(at + 4);
    if (len > limit) return { frames, error: 'over the limit', idle: false };
    if (bytes.length - at < FRAME_HEADER_SIZE + len) break;
    frames.push(bytes.subarray(at, at + FRAME_HEADER_SIZE + len));
    at += FRAME_HEADER_SIZE + len;
  }
  return { frames, idle: at === bytes.length };
}

function sameDecode(a: Decoded, b: Decoded, how: string): void {
  expect(a.frames.length === b.frames.length, () => `${how}: ${a.frames.length} frames, whole gave ${b.frames.length}`);
  expect(a.error === b.error, () => `${how}: error '${a.error}', whole gave '${b.error}'`);
  if (a.error === undefined) expect(a.idle === b.idle, () => `${how}: idle ${a.idle}, whole gave ${b.idle}`);
}

/** Split at every offset, and at the input's cuts: the same frames and errors as whole. */
export const frameReader: FuzzTarget = {
  input: withCuts(stream(6), fc.oneof(fc.constant(FRAME_MAX), fc.integer({ min: 0, max: 64 }))),
  check({ bytes, cuts, limit }) {
    const m = model(bytes, limit);
    const whole = decode([bytes], limit, m, 'whole stream');
    expect(whole.frames.length === m.frames.length, () => `whole stream: ${whole.frames.length} frames, the model reads ${m.frames.length}`);
    expect((whole.error === undefined) === (m.error === undefined), () => `whole stream: error '${whole.error}' where the model says '${m.error}'`);
    if (!whole.error) expect(whole.idle === m.idle, () => 'whole stream: idle as the model says');
    for (let i = 0; i <= bytes.length; i++) {
      const how = `split at ${i}`;
      sameDecode(decode([bytes.subarray(0, i), bytes.subarray(i)], limit, whole, how), whole, how);
    }
    const how = `cut at ${cuts.join(',')}`;
    sameDecode(decode(chunksAt(bytes, cuts), limit, whole, how), whole, how);
  },
};

// ----------------------------------------------------------------- FrameScanner

// As lodged scans a response from a worker: END or ERROR ends it, REQ-side frames are not allowed.
const RESPONSE = new Set<number>([FrameType.HEAD, FrameType.DATA, FrameType.END, FrameType.ERROR]);
const isLast = (t: number) => t === FrameType.END || t === FrameType.ERROR;

interface Scanned {
  ends: number[];
  error?: string;
}

/** Offsets (in the whole stream) where exchanges end; the caller goes on after each. */
function scanAll(chunks: Buffer[]): Scanned {
  const scanner = new FrameScanner(isLast, (t) => RESPONSE.has(t));
  const ends: number[] = [];
  let base = 0;
  for (const chunk of chunks) {
    let rest = chunk;
    let offset = base;
    for (;;) {
      let end: number;
      try {
        end = scanner.scan(rest);
      } catch (err) {
        expect(err instanceof FrameError, () => `only FrameError is thrown, got ${describe(err)}`);
        return { ends, error: (err as Error).message };
      }
      if (end < 0) break;
      expect(end <= rest.length, () => 'an end lies inside the chunk');
      expect(scanner.atBoundary, () => 'at a boundary after an exchange ends');
      ends.push(offset + end);
      offset += end;
      rest = rest.subarray(end);
      if (rest.length === 0) break;
    }
    base += chunk.length;
  }
  return { ends };
}

function scanModel(bytes: Buffer): Scanned {
  const ends: number[] = [];
  let at = 0;
  while (bytes.length - at >= FRAME_HEADER_SIZE) {
    const type = bytes[at];
    const len = bytes.readUInt32BE(at + 4);
    if (!RESPONSE.has(type)) return { ends, error: 'not expected' };
    if (len > FRAME_MAX) return { ends, error: 'over the limit' };
    at += FRAME_HEADER_SIZE + len;
    if (at > bytes.length) break;
    if (isLast(type)) ends.push(at);
  }
  return { ends };
}

const responsePart: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...RESPONSE), fc.uint8Array({ maxLength: 40 })).map(([t, p]) => encodeFrame(t, Buffer.from(p))) },
  { weight: 1, arbitrary: streamPart },
);

/** The scanner reports the same boundaries, and fails the same, however the stream is cut. */
export const frameScanner: FuzzTarget = {
  input: withCuts(fc.array(responsePart, { maxLength: 10 }).map((p) => Buffer.concat(p)), fc.constant(FRAME_MAX)),
  check({ bytes, cuts }) {
    const whole = scanAll([bytes]);
    const m = scanModel(bytes);
    expect(whole.ends.join() === m.ends.join(), () => `whole stream: ends ${whole.ends} where the model says ${m.ends}`);
    expect((whole.error === undefined) === (m.error === undefined), () => `whole stream: error '${whole.error}', model '${m.error}'`);
    const same = (s: Scanned, how: string) => {
      expect(s.ends.join() === whole.ends.join(), () => `${how}: ends ${s.ends}, whole gave ${whole.ends}`);
      expect(s.error === whole.error, () => `${how}: error '${s.error}', whole gave '${whole.error}'`);
    };
    for (let i = 0; i <= bytes.length; i++) same(scanAll(chunksAt(bytes, [i])), `split at ${i}`);
    same(scanAll(chunksAt(bytes, cuts)), `cut at ${cuts.join(',')}`);
  },
};

// -------------------------------------------------------------------- APP frame

const APP_NAMES = ['root', 'kind', 'entry', 'callable', 'config', 'timeout', 'memory', 'processes', 'cpu', 'idle', 'tasks',
  'limit.timeout', 'limit.memory', 'limit.processes', 'limit.cpu', 'limit.idle', 'limit.tasks'];

const appName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...APP_NAMES) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map((s) => `env.${s}`) },
  { weight: 1, arbitrary: fc.constantFrom('env.PATH', 'env.LD_PRELOAD', 'env.PYTHONPATH', 'env.', 'env.1A', 'env.A_1') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

const appValue = fc.oneof(
  fc.constantFrom('wsgi', 'node', '/', '/home/t/www', '/home/t/../../etc', 'app.py', '../app.py', '/abs.py', 'a/../b.py',
    'application', '1app', '0', '-1', '1.5', '1e3', '0x10', 'NaN', 'Infinity', '99999999999999999999', ' 7', '7 ', ''),
  fc.string({ maxLength: 20 }),
  fc.integer({ min: -5, max: 1 << 30 }).map(String),
  fc.string({ maxLength: 8 }).map((s) => `/home/t/${s}`),
);

const appPayload: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.tuple(appName, appValue), { maxLength: 14 }).map((pairs) => encodePairs(pairs)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.array(fc.tuple(appName, appValue), { maxLength: 6 }), fc.uint8Array({ maxLength: 16 }))
      .map(([pairs, tail]) => Buffer.concat([encodePairs(pairs), Buffer.from(tail)])),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'PYTHONHOME', 'PYTHONPATH'];

let settings: ReturnType<typeof checkConfig> | undefined;

/**
 * Any APP payload: parsed into a spec that keeps its promises (paths inside, limits
 * within the host's caps, allowed environment names), or refused with the project's
 * own errors, never anything else.
 */
export const appSpec: FuzzTarget = {
  input: withCuts(appPayload, fc.constant(FRAME_MAX)),
  check({ bytes }) {
    if (!settings) {
      openLog(undefined, 'error'); // the over-the-cap warnings are expected here
      settings = checkConfig({}, 'the fuzz target');
    }
    let spec;
    try {
      spec = parseAppSpec(encodeFrame(FrameType.APP, bytes), settings);
    } catch (err) {
      expect(err instanceof LodgeError || err instanceof PairsError, () => `refused with a project error, got ${describe(err)}`);
      return;
    }
    expect(spec.root.startsWith('/') && !spec.root.includes('\0') && !spec.root.split('/').includes('..'), () => `root '${spec.root}'`);
    expect(spec.kind === 'wsgi', () => `kind '${spec.kind}'`);
    expect(spec.entry !== '' && !spec.entry.startsWith('/') && !spec.entry.includes('\0') && !spec.entry.split('/').includes('..'),
      () => `entry '${spec.entry}'`);
    expect(spec.callable === '' || ENV_NAME.test(spec.callable), () => `callable '${spec.callable}'`);
    for (const [key, cap] of Object.entries(settings.limits)) {
      const k = key as keyof typeof spec.limits;
      const v = spec.limits[k];
      // 0 only where the host's default is 0 (no LodgeCPU: no CPU limit).
      expect(typeof v === 'number' && Number.isFinite(v) && v <= cap && (v > 0 || (v === 0 && settings.defaults[k] === 0)),
        () => `limit ${key} = ${v}, cap ${cap}, default ${settings!.defaults[k]}`);
    }
    for (const name of Object.keys(spec.env)) {
      expect(ENV_NAME.test(name) && !RESERVED.includes(name), () => `env name '${name}'`);
    }
  },
};

export const lodgedTargets: Record<string, FuzzTarget> = { 'frame-reader': frameReader, 'frame-scanner': frameScanner, 'app-spec': appSpec };

// The code under test throws on most bad inputs, and capturing a stack for each is
// most of the time a run takes; a failure is reported by message and class.
function withoutStacks<T>(run: () => T): T {
  const depth = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return run();
  } finally {
    Error.stackTraceLimit = depth;
  }
}

const propertyOf = (target: FuzzTarget) => fc.property(target.input, (input) => target.check(input));

/** Runs a target for `runs` inputs from `seed`; throws fast-check's report on a failure. */
export function runTarget(name: string, runs: number, seed: number): void {
  withoutStacks(() => fc.assert(propertyOf(lodgedTargets[name]), { numRuns: runs, seed }));
}

/** The same, returning the shrunk failing input as a saved case would hold it. */
export function findFailure(name: string, runs: number, seed: number): SavedCase | undefined {
  const details = withoutStacks(() => fc.check(propertyOf(lodgedTargets[name]), { numRuns: runs, seed }));
  if (!details.failed || !details.counterexample) return undefined;
  const [input] = details.counterexample;
  return {
    target: name,
    note: `found by npm run fuzz (seed ${seed}): ${describe(details.errorInstance)}`,
    bytes: input.bytes.toString('base64'),
    cuts: input.cuts,
    limit: input.limit,
  };
}

export interface SavedCase {
  target: string;
  note?: string;
  bytes: string;
  cuts?: number[];
  limit?: number;
}

/** A saved case (test/fuzz-regressions/*.json) as the input it was. */
export function inputFromJson(saved: SavedCase): FuzzInput {
  return { bytes: Buffer.from(saved.bytes, 'base64'), cuts: saved.cuts ?? [], limit: saved.limit ?? FRAME_MAX };
}
