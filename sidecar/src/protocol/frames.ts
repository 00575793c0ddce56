// Frame encoders of the Lodge protocol (see PROTOCOL.md beside this file). The codes,
// flags and verdicts come from constants.ts, generated from protocol.json with mod_lodge's
// and the worker's copies; they are exported here too, beside the encoders that use them.
import { FRAME_HEADER_SIZE, FrameType } from './constants';

export { APP_BORROW, APP_MAY_BORROW, APP_ROUTE, APP_TUNNEL, FRAME_HEADER_SIZE, FRAME_MAX, FrameType, Release } from './constants';

export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export function frameName(type: number): string {
  for (const [name, code] of Object.entries(FrameType)) if (code === type) return name;
  return `0x${type.toString(16).padStart(2, '0')}`;
}

export function encodeFrame(type: number, payload?: Buffer): Buffer {
  const len = payload ? payload.length : 0;
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + len);
  out.writeUInt32BE(0, 0);
  out[0] = type;
  out.writeUInt32BE(len, 4);
  if (payload) payload.copy(out, FRAME_HEADER_SIZE);
  return out;
}

/** The frames that carry nothing; built once since they are sent on every request. */
export const ABORT_FRAME = encodeFrame(FrameType.ABORT);
export const BODY_END_FRAME = encodeFrame(FrameType.BODY_END);
export const END_FRAME = encodeFrame(FrameType.END);

export function encodeError(status: number, retryAfter: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const payload = Buffer.allocUnsafe(4 + text.length);
  payload.writeUInt16BE(status, 0);
  payload.writeUInt16BE(Math.max(0, Math.min(65535, retryAfter)), 2);
  text.copy(payload, 4);
  return encodeFrame(FrameType.ERROR, payload);
}

/** HEAD: the status, then the response headers as pairs, in order. */
export function encodeHead(status: number, headers: Iterable<[string, string]>): Buffer {
  const pairs = encodePairs(headers);
  const payload = Buffer.allocUnsafe(2 + pairs.length);
  payload.writeUInt16BE(status, 0);
  pairs.copy(payload, 2);
  return encodeFrame(FrameType.HEAD, payload);
}

/** GRANT: sent with the worker's socket attached (SCM_RIGHTS). */
export function encodeGrant(timeoutSecs: number, pid: number): Buffer {
  return encodeFrame(FrameType.GRANT, encodePairs([['timeout', String(timeoutSecs)], ['pid', String(pid)]]));
}

/**
 * ROUTE: the app's listening socket, which mod_lodge connects to itself from now on;
 * `keep`: its workers take request after request on a connection, which mod_lodge may
 * keep for the next (PROTOCOL.md, "Kept connections").
 */
export function encodeRoute(socketPath: string, timeoutSecs: number, queueSecs: number, keep = false): Buffer {
  const pairs: Array<[string, string]> = [['socket', socketPath], ['timeout', String(timeoutSecs)], ['queue', String(queueSecs)]];
  if (keep) pairs.push(['keep', '1']);
  return encodeFrame(FrameType.ROUTE, encodePairs(pairs));
}

export function encodePairs(pairs: Iterable<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of pairs) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    const head = Buffer.allocUnsafe(2);
    head.writeUInt16BE(n.length, 0);
    const vlen = Buffer.allocUnsafe(4);
    vlen.writeUInt32BE(v.length, 0);
    parts.push(head, n, vlen, v);
  }
  return Buffer.concat(parts);
}

export class PairsError extends Error {}

/** Decodes a pairs payload; names and values come back as latin-1 strings. */
export function decodePairs(buf: Buffer, offset = 0): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let at = offset;
  while (at < buf.length) {
    if (at + 2 > buf.length) throw new PairsError(`pair name length cut off at byte ${at}`);
    const nlen = buf.readUInt16BE(at);
    at += 2;
    if (at + nlen + 4 > buf.length) throw new PairsError(`pair name of ${nlen} bytes runs past the payload`);
    const name = buf.toString('latin1', at, at + nlen);
    at += nlen;
    const vlen = buf.readUInt32BE(at);
    at += 4;
    if (at + vlen > buf.length) throw new PairsError(`value of '${name}' (${vlen} bytes) runs past the payload`);
    out.push([name, buf.toString('latin1', at, at + vlen)]);
    at += vlen;
  }
  return out;
}

export interface ErrorFrame {
  status: number;
  retryAfter: number;
  message: string;
}

export function decodeError(payload: Buffer): ErrorFrame {
  if (payload.length < 4) throw new PairsError('ERROR frame shorter than 4 bytes');
  return {
    status: payload.readUInt16BE(0),
    retryAfter: payload.readUInt16BE(2),
    message: payload.toString('utf8', 4),
  };
}
