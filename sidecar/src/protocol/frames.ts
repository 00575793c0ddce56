// Frame codes and encoders of the Lodge protocol (see PROTOCOL.md beside this file).
// native/apache/lodge_frame.h holds the same codes; test/protocol-codes.test.ts
// checks that they agree.

export const FrameType = {
  APP: 0x01,
  REQ: 0x02,
  BODY: 0x03,
  BODY_END: 0x04,
  ABORT: 0x05,
  RELEASE: 0x06,
  HEAD: 0x10,
  DATA: 0x11,
  END: 0x12,
  ERROR: 0x13,
  GRANT: 0x14,
  ROUTE: 0x15,
  ACCEPTED: 0x16,
  READY: 0x20,
  FAIL: 0x21,
  START: 0x22,
} as const;

/** APP flags: mod_lodge takes the worker's socket itself (GRANT ... RELEASE). */
export const APP_BORROW = 0x01;
/** APP flags: a bodyless request; lodged may lend the worker (GRANT) or carry it. */
export const APP_MAY_BORROW = 0x02;
/**
 * APP flags: the client asked for a WebSocket (Upgrade). No BODY_END follows the REQ; a
 * HEAD of 101 opens the tunnel: BODY frames carry the client's bytes, DATA frames the
 * backend's, until BODY_END (the client left) or END (the backend closed).
 */
export const APP_TUNNEL = 0x04;
/** APP flags: mod_lodge can go to the app's own socket (ROUTE) for this and later requests. */
export const APP_ROUTE = 0x08;

/** RELEASE verdicts: how mod_lodge hands a borrowed worker back. */
export const Release = {
  /** Its END or ERROR was read: idle again. */
  DONE: 0,
  /** No progress for the GRANT's timeout. */
  TIMEOUT: 1,
  /** It broke the frame protocol. */
  BROKEN: 2,
  /** Its socket closed: lodged answers with an ERROR saying why. */
  LOST: 3,
  /** Told ABORT, it did not finish within the grace period. */
  STUCK: 4,
} as const;

export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export const HEADER_SIZE = 8;
/** Larger frames are refused before their payload is buffered. */
export const FRAME_MAX = 16 * 1024 * 1024;

export function frameName(type: number): string {
  for (const [name, code] of Object.entries(FrameType)) if (code === type) return name;
  return `0x${type.toString(16).padStart(2, '0')}`;
}

export function encodeFrame(type: number, payload?: Buffer): Buffer {
  const len = payload ? payload.length : 0;
  const out = Buffer.allocUnsafe(HEADER_SIZE + len);
  out.writeUInt32BE(0, 0);
  out[0] = type;
  out.writeUInt32BE(len, 4);
  if (payload) payload.copy(out, HEADER_SIZE);
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

/** ROUTE: the app's listening socket, which mod_lodge connects to itself from now on. */
export function encodeRoute(socketPath: string, timeoutSecs: number): Buffer {
  return encodeFrame(FrameType.ROUTE, encodePairs([['socket', socketPath], ['timeout', String(timeoutSecs)]]));
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
