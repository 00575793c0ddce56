import { decodePairs } from '../protocol/frames';
import { LANES_MAX } from '../protocol/constants';
import { MAX_SLOTS } from '../scoreboard/layout';

/** What START says (PROTOCOL.md, "Worker start"). */
export interface StartPairs {
  root: string;
  entry: string;
  log: string;
  /** The tenant's LodgeEnv, for the app's process.env. */
  env: Record<string, string>;
  /** How many lanes lodged gave the worker: fd 3, then LANE_FD_FIRST onwards. */
  lanes: number;
  /** The first of the worker's `lanes` scoreboard slots, when lodged gave it the app's socket (LISTEN_FD, BOARD_FD). */
  slot?: number;
}

// `callable` is the WSGI worker's: lodged may send it to any runtime; this one has no use for it.
const START_KEYS = new Set(['root', 'entry', 'log', 'callable', 'slot', 'lanes']);

/** START's pairs, or throws an Error whose message says what is wrong (a protocol error). */
export function parseStart(payload: Buffer): StartPairs {
  const opts = new Map<string, string>();
  const env: Record<string, string> = {};
  for (const [k, v] of decodePairs(payload)) {
    // LodgeEnv values are lodged's strings sent as latin-1 (encodePairs), paths Apache's bytes.
    if (k.startsWith('env.')) env[k.slice(4)] = v;
    else if (START_KEYS.has(k)) opts.set(k, Buffer.from(v, 'latin1').toString('utf8'));
    else throw new Error(`unknown pair '${k}'`);
  }
  for (const k of ['root', 'entry', 'log']) if (!opts.get(k)) throw new Error(`no ${k}`);
  const lanes = lanesOf(opts.get('lanes'));
  const out: StartPairs = { root: opts.get('root')!, entry: opts.get('entry')!, log: opts.get('log')!, env, lanes };
  // Whether the slots are on the board is the board's to say (scoreboard/writer.ts).
  if (opts.has('slot')) out.slot = decimal('slot', opts.get('slot')!, MAX_SLOTS - lanes, 0);
  return out;
}

function decimal(name: string, v: string, max: number, min: number): number {
  const n = /^(0|[1-9][0-9]*)$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new Error(`${name} must be a decimal from ${min} to ${max}, not '${v}'`);
  return n;
}

// A plain decimal, 1 to LANES_MAX: lodged never writes a sign, a leading zero or spaces,
// so anything else is a lodged the worker does not understand.
function lanesOf(v: string | undefined): number {
  if (v === undefined) return 1;
  const n = /^[1-9][0-9]*$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= LANES_MAX)) throw new Error(`lanes must be a decimal from 1 to ${LANES_MAX}, not '${v}'`);
  return n;
}
