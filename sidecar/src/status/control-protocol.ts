import { z } from 'zod';
import { statusSnapshot } from './schema';

/**
 * The control socket's exchange (server/control.ts, `lodge status`): one JSON request
 * line, one JSON answer line, then the socket closes. Both sides check with these.
 */

/** A request line is at most this long: the longest is a restart naming an app directory. */
export const CONTROL_LINE_MAX = 8192;
/** What a client reads at most: a snapshot of 10,000 apps is a few MiB. */
export const CONTROL_ANSWER_MAX = 64 * 1024 * 1024;

export const controlRequest = z.union([
  z.object({ op: z.literal('status') }).strict(),
  z.object({ op: z.literal('restart'), root: z.string().startsWith('/').max(4096) }).strict(),
  z.object({ op: z.literal('stop'), pid: z.number().int().positive() }).strict(),
]);
export type ControlRequest = z.infer<typeof controlRequest>;

export const controlAnswer = z.union([
  z.object({ ok: z.literal(true), status: statusSnapshot }).strict(),
  z.object({ ok: z.literal(true), done: z.boolean() }).strict(),
  z.object({ ok: z.literal(false), error: z.string() }).strict(),
]);
export type ControlAnswer = z.infer<typeof controlAnswer>;

/** The control socket beside lodged's: `lodged.sock` → `lodged.sock.ctl`. */
export function controlPath(socket: string): string {
  return socket.endsWith('.ctl') ? socket : `${socket}.ctl`;
}
