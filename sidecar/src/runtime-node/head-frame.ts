import { FRAME_HEADER_SIZE, FrameType, MESSAGE_TEXT_MAX } from '../protocol/constants';
import { encodeError } from '../protocol/frames';
import { log } from './process-io';

/**
 * The HEAD frame of a response (frames.ts encodeHead's bytes) in one allocation: every
 * response has one, and its names and values are latin-1 strings the response parser
 * cut, one byte a character, so the size is known before a byte is written.
 */
export function headFrame(status: number, headers: Array<[string, string]>): Buffer {
  let size = FRAME_HEADER_SIZE + 2;
  for (let i = 0; i < headers.length; i++) size += 6 + headers[i][0].length + headers[i][1].length;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(0, 0);
  out[0] = FrameType.HEAD;
  out.writeUInt32BE(size - FRAME_HEADER_SIZE, 4);
  out.writeUInt16BE(status, FRAME_HEADER_SIZE);
  let at = FRAME_HEADER_SIZE + 2;
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i];
    out.writeUInt16BE(name.length, at);
    at += 2 + out.write(name, at + 2, 'latin1');
    out.writeUInt32BE(value.length, at);
    at += 4 + out.write(value, at + 4, 'latin1');
  }
  return out;
}

/**
 * Headers of the connection between the runtime and the app's server, not of the
 * response (mod_lodge drops the hop-by-hop ones too; these are ours alone): the body goes
 * out de-chunked in DATA frames.
 */
export function isConnectionHeader(name: string): boolean {
  const n = name.length;
  if (n !== 10 && n !== 17) return false;
  const l = name.toLowerCase();
  return l === 'connection' || l === 'keep-alive' || l === 'transfer-encoding';
}

/** The app failed the request (`line`: "GET /path"): said in the tenant's log, and an ERROR 502 frame saying it to mod_lodge. */
export function appFailed(line: string, why: string): Buffer {
  log(`${line}: ${why}`);
  return encodeError(502, 0, Buffer.from(`${line}: ${why}`).subarray(0, MESSAGE_TEXT_MAX).toString());
}
