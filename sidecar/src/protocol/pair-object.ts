import { z } from 'zod';
import { ProtocolError } from '../errors';
import { FRAME_HEADER_SIZE } from './constants';
import { decodePairs } from './frames';

/**
 * Pairs (PROTOCOL.md) made into a plain object that a strict zod schema then checks,
 * so that every name a frame may carry is declared somewhere: a name nobody declared
 * is refused by the schema, not passed over.
 *
 * A plain name may come once. Names declared `repeated` gather into an array; names
 * under a declared `family` prefix (`env.`) gather into an object under the prefix's
 * name without its dot (`env: { NAME: value }`), the last of a name winning.
 */
export interface PairShape {
  repeated?: readonly string[];
  families?: readonly string[];
}

export type PairObject = Record<string, string | string[] | Record<string, string>>;

export function pairObject(pairs: Array<[string, string]>, shape: PairShape, frame: string): PairObject {
  const out: PairObject = {};
  for (const r of shape.repeated ?? []) out[r] = [];
  next: for (const [name, value] of pairs) {
    for (const f of shape.families ?? []) {
      if (name.startsWith(f)) {
        const key = f.slice(0, -1);
        const family = (out[key] ??= {}) as Record<string, string>;
        family[name.slice(f.length)] = value;
        continue next;
      }
    }
    const held = out[name];
    if (Array.isArray(held)) held.push(value);
    else if (held !== undefined) throw new ProtocolError(`${frame}: pair '${shown(name)}' given twice; expected once`);
    else out[name] = value;
  }
  return out;
}

/** Decodes a frame's pairs (after its 8-byte header) and checks them against `schema`. */
export function parsePairs<S extends z.ZodType>(frame: Buffer, shape: PairShape, schema: S, what: string): z.output<S> {
  let pairs: Array<[string, string]>;
  try {
    pairs = decodePairs(frame, FRAME_HEADER_SIZE);
  } catch (err) {
    throw new ProtocolError(`${what}: ${(err as Error).message}`);
  }
  return check(schema, pairObject(pairs, shape, what), what);
}

/** `raw` checked by `schema`; a ProtocolError saying what was expected and what came. */
export function check<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  throw new ProtocolError(`${what}: ${r.error.issues.map((i) => describeIssue(i, raw)).join('; ')}`);
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.map((k) => `'${shown([...issue.path.map(String), k].join('.'))}'`).join(', ');
    return `unknown pair ${names}; expected none such`;
  }
  if (issue.code === 'invalid_key') {
    // A name in a family (`env.NAME`): the name is what came.
    const name = String(issue.path.at(-1));
    return `${where}: expected ${issue.issues.map((i) => i.message).join(', ')}, got the name '${shown(name)}'`;
  }
  const got = valueAt(raw, issue.path);
  const came = got === undefined ? 'none' : `'${shown(String(got))}'`;
  return `${where || 'payload'}: expected ${issue.message}, got ${came}`;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** A value quoted in a message: short, and one line whatever it holds. */
function shown(v: string): string {
  const cut = v.length > 80 ? `${v.slice(0, 80)}...` : v;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// Building blocks of the frame schemas. Pair values are strings; numbers are decimal
// integers written plainly (no sign, no exponent, no leading zeros), in range.

/** A decimal integer from `min` to `max`, as a pair's value. */
export function intPair(min: number, max: number): z.ZodType<number, string> {
  const what = `an integer from ${min} to ${max}`;
  return z
    .string({ error: what })
    .regex(/^(0|[1-9][0-9]{0,15})$/, { error: what })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: what }).max(max, { error: what }));
}

/** A path: not empty, no NUL, at most PATH_MAX bytes. */
export function pathPair(what: string): z.ZodString {
  return z
    .string({ error: what })
    .min(1, { error: what })
    .max(4096, { error: `${what} of at most 4096 bytes` })
    .refine((p) => !p.includes('\0'), { error: `${what} without NUL` }) as unknown as z.ZodString;
}
