import { z } from 'zod';
import { ProtocolError } from '../errors';
import { FAIL_MAX, FRAME_HEADER_SIZE, RELEASE_PAYLOAD_SIZE, Release, VERDICT_PAYLOAD_SIZE, VERDICT_TICKET_SIZE } from './constants';
import { PairShape, check, intPair, parsePairs, pathPair } from './pair-object';

// The schemas of the frames lodged takes from outside (PROTOCOL.md): APP from
// mod_lodge, RELEASE from mod_lodge, READY and FAIL from a worker. Each frame is
// checked once where it comes in, and what comes out is typed; a pair nobody declared
// here is refused. REQ, BODY and the response frames are not parsed by lodged (the
// hot path: they pass through as bytes).

const COUNT_MAX = Number.MAX_SAFE_INTEGER;
/** A limit's value: 0 when the tenant set none. */
const amount = intPair(0, COUNT_MAX).optional();
/** A share the host set in Apache (mod_lodge sends only those set). */
const positive = intPair(1, COUNT_MAX).optional();

/**
 * The host's `LodgeLimit` caps (`limit.NAME`): those of one app, then a tenant's share
 * (`tenant_*`), which the share's own code clamps.
 */
/** An app's limits, as the tenant asked (`timeout`) or the host capped them (`limit.timeout`). */
const appLimits = {
  timeout: amount,
  memory: amount,
  processes: amount,
  cpu: amount,
  idle: amount,
  // mod_lodge sends no tenant value: the host's alone, but a forged one is clamped like the rest.
  tasks: amount,
  concurrency: amount,
};

const hostLimits = z
  .object({
    ...appLimits,
    tenant_requests: positive,
    tenant_processes: positive,
    tenant_memory: positive,
  })
  .strict();

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PY_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const APP_SHAPE: PairShape = { families: ['env.', 'limit.'] };

export const appSchema = z
  .object({
    root: pathPair('an absolute path').refine((p) => p.startsWith('/') && !p.split('/').includes('..'), {
      error: 'an absolute path without ..',
    }),
    kind: z.enum(['wsgi', 'asgi', 'node'], { error: "'wsgi', 'asgi' or 'node'" }),
    entry: pathPair('a path inside the app directory').refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), {
      error: 'a path inside the app directory',
    }),
    callable: z.string().max(255).regex(new RegExp(`^$|${PY_NAME.source}`), { error: 'a Python name, or nothing' }).default(''),
    // Who mod_lodge saw own the root: lodged finds that out again itself (ownership.ts).
    uid: intPair(0, 0xffffffff).optional(),
    gid: intPair(0, 0xffffffff).optional(),
    ...appLimits,
    config: pathPair('the path of the .htaccess').optional(),
    'apache.workers': positive,
    limit: hostLimits.default({}),
    env: z
      .record(z.string().regex(ENV_NAME, { error: 'LodgeEnv names that are variable names' }), z.string().max(128 * 1024))
      .default({}),
  })
  .strict();

export type AppPairs = z.output<typeof appSchema>;

/** The APP frame's pairs, checked; a ProtocolError says which and why. */
export function parseAppPairs(frame: Buffer): AppPairs {
  return parsePairs(frame, APP_SHAPE, appSchema, 'APP');
}

/**
 * The APP of a request to the host's status location (`SetHandler lodge-status`):
 * `kind=status` and nothing else; no app runs for it (sidecar/src/status/web.ts answers).
 */
export const statusAppSchema = z.object({ kind: z.literal('status') }).strict();

export function parseStatusApp(frame: Buffer): z.output<typeof statusAppSchema> {
  return parsePairs(frame, {}, statusAppSchema, 'APP (status)');
}

/**
 * The APP of a request to a tenant's dashboard (`LodgeDashboard` in its .htaccess): the
 * app directory and the file that declares it; nothing runs for it. lodged checks both
 * itself (pool/dashboard-owner.ts) before it shows anything.
 */
export const dashboardAppSchema = z
  .object({
    kind: z.literal('dashboard'),
    root: pathPair('an absolute path').refine((p) => p.startsWith('/') && !p.split('/').includes('..'), {
      error: 'an absolute path without ..',
    }),
    config: pathPair('the path of the .htaccess'),
  })
  .strict();

export type DashboardApp = z.output<typeof dashboardAppSchema>;

export function parseDashboardApp(frame: Buffer): DashboardApp {
  return parsePairs(frame, {}, dashboardAppSchema, 'APP (dashboard)');
}

const KIND = Buffer.from('kind', 'latin1');
const STATUS = Buffer.from('status', 'latin1');
const DASHBOARD = Buffer.from('dashboard', 'latin1');

/** Which of lodged's own pages an APP frame names (kind=status, kind=dashboard), if any. */
export type OwnPage = 'status' | 'dashboard';

/**
 * Whether an APP frame names one of lodged's own pages (a `kind` pair of `status` or
 * `dashboard`): read on the pair headers alone, without decoding, since every
 * request's APP passes here. A malformed frame is no such APP; its own schema then
 * says what is wrong with it.
 */
export function ownPageOf(frame: Buffer): OwnPage | undefined {
  let at = FRAME_HEADER_SIZE;
  while (at + 2 <= frame.length) {
    const nlen = frame.readUInt16BE(at);
    const vat = at + 2 + nlen;
    if (vat + 4 > frame.length) return undefined;
    const vlen = frame.readUInt32BE(vat);
    if (vat + 4 + vlen > frame.length) return undefined;
    if (nlen === KIND.length && frame.compare(KIND, 0, KIND.length, at + 2, vat) === 0) {
      for (const [name, bytes] of [['status', STATUS], ['dashboard', DASHBOARD]] as const) {
        if (vlen === bytes.length && frame.compare(bytes, 0, bytes.length, vat + 4, vat + 4 + vlen) === 0) return name;
      }
      return undefined;
    }
    at = vat + 4 + vlen;
  }
  return undefined;
}

export function isStatusApp(frame: Buffer): boolean {
  return ownPageOf(frame) === 'status';
}

export const READY_SHAPE: PairShape = { repeated: ['file'] };

/** Linux's pid_max is at most 2^22. */
const PID_MAX = 4_194_304;

export const readySchema = z
  .object({
    pid: intPair(1, PID_MAX),
    file: z.array(pathPair('a file path')),
    // "1": the worker takes connections on the app's socket (LISTEN_FD); a worker
    // that does not say so (its own frame loop, say) only ever gets requests from lodged.
    accepts: z.literal('1').optional(),
  })
  .strict();

export type Ready = z.output<typeof readySchema>;

export function parseReady(frame: Buffer): Ready {
  return parsePairs(frame, READY_SHAPE, readySchema, 'READY');
}

/** FAIL: the reason, as UTF-8 text (what cannot be decoded shows as U+FFFD). */
export function parseFail(frame: Buffer): string {
  return check(z.string().max(FAIL_MAX), frame.toString('utf8', FRAME_HEADER_SIZE), 'FAIL');
}

const VERDICTS = Object.values(Release) as number[];
const VERDICT_LIST = Object.entries(Release).map(([k, v]) => `${v} (${k})`).join(', ');
const verdictSchema = z.number().int().refine((v) => VERDICTS.includes(v));

/** RELEASE: a verdict of Release and the status of the answer the client got. */
export function parseRelease(frame: Buffer): { verdict: number; status: number } {
  return parseOutcome(frame, 'RELEASE', RELEASE_PAYLOAD_SIZE);
}

/** The longest path of an app's socket a VERDICT names (sockaddr_un's sun_path, less its NUL). */
const SOCKET_PATH_MAX = 107;

/**
 * VERDICT: RELEASE's verdict and status, then the pid of the worker they are about; or,
 * for a request that failed before its worker's ACCEPTED (pid 0), the REQ's ticket and
 * the app's socket, by which lodged finds the worker (`pid` 0 then).
 */
export function parseVerdict(frame: Buffer): { verdict: number; status: number; pid: number; ticket: number; socket: string } {
  const size = frame.length - FRAME_HEADER_SIZE;
  const pid = size >= VERDICT_PAYLOAD_SIZE ? frame.readUInt32BE(FRAME_HEADER_SIZE + 3) : -1;
  if (pid !== 0) {
    const { verdict, status } = parseOutcome(frame, 'VERDICT', VERDICT_PAYLOAD_SIZE);
    if (pid < 1 || pid > PID_MAX) throw new ProtocolError(`VERDICT: expected a pid of 1-${PID_MAX}, got ${pid}`);
    return { verdict, status, pid, ticket: 0, socket: '' };
  }
  const fixed = VERDICT_PAYLOAD_SIZE + VERDICT_TICKET_SIZE;
  const path = size - fixed;
  if (path < 2 || path > SOCKET_PATH_MAX) {
    throw new ProtocolError(`VERDICT: with a pid of 0, expected ${fixed + 2}-${fixed + SOCKET_PATH_MAX} bytes (a ticket and a socket path), got ${size}`);
  }
  const { verdict, status } = parseOutcome(frame, 'VERDICT', size);
  const ticket = frame.readUInt32BE(FRAME_HEADER_SIZE + VERDICT_PAYLOAD_SIZE);
  if (ticket < 1 || ticket > 0xffffff) throw new ProtocolError(`VERDICT: expected a ticket of 1-16777215, got ${ticket}`);
  const socket = frame.toString('latin1', FRAME_HEADER_SIZE + fixed);
  if (socket[0] !== '/' || socket.includes('\0')) throw new ProtocolError('VERDICT: the socket path is not an absolute path');
  return { verdict, status, pid: 0, ticket, socket };
}

// A verdict byte and a u16 status (0, or 100-599) opening a payload of `size` bytes.
function parseOutcome(frame: Buffer, name: string, size: number): { verdict: number; status: number } {
  if (frame.length !== FRAME_HEADER_SIZE + size) {
    throw new ProtocolError(`${name}: expected a payload of ${size} bytes, got ${frame.length - FRAME_HEADER_SIZE}`);
  }
  const r = verdictSchema.safeParse(frame[FRAME_HEADER_SIZE]);
  if (!r.success) throw new ProtocolError(`${name}: expected a verdict, one of ${VERDICT_LIST}; got ${name} with unknown verdict ${frame[FRAME_HEADER_SIZE]}`);
  const status = frame.readUInt16BE(FRAME_HEADER_SIZE + 1);
  if (status !== 0 && (status < 100 || status > 599)) throw new ProtocolError(`${name}: expected status 0 or 100-599, got ${status}`);
  return { verdict: r.data, status };
}
