import * as fs from 'node:fs';
import { currentSettings } from '../config/load';
import { LodgeError, RefusedError, ShuttingDownError } from '../errors';
import { parseAppSpec } from '../pool/app-spec';
import { FrameType, FRAME_HEADER_SIZE, Release } from '../protocol/frames';
import { appBook, hostEvent } from './app-book';

// What server/apache-conn.ts tells the status model about a request, one call each:
// the answer's status as it passes, and refusals (which come before any pool).

/**
 * The HTTP status of a response whose first bytes these are: HEAD and ERROR both open
 * with it (PROTOCOL.md). 0 when the first chunk is too short to hold it (rare: a
 * worker writes its HEAD frame whole), counted as not seen.
 */
export function responseStatus(first: Buffer): number {
  if (first.length < FRAME_HEADER_SIZE + 2) return 0;
  const t = first[0];
  return t === FrameType.HEAD || t === FrameType.ERROR ? first.readUInt16BE(FRAME_HEADER_SIZE) : 0;
}

/**
 * The status of a lent request: mod_lodge carried the response itself and says in
 * RELEASE what it answered (0 when nothing was); without one, TIMEOUT and BROKEN are
 * mod_lodge's own 504 and 502, and anything else is not seen (0).
 */
export function releasedStatus(verdict: number, answered: number): number {
  if (answered !== 0) return answered;
  return verdict === Release.TIMEOUT ? 504 : verdict === Release.BROKEN ? 502 : 0;
}

/**
 * lodged refused to run the app a request named: the app is remembered as refused,
 * under the app directory's owner (so that tenant sees why, and nobody else does).
 * Whatever cannot be read of the frame goes to the host's event list only.
 */
export function refusedRequest(appFrame: Buffer, err: LodgeError): void {
  if (err instanceof ShuttingDownError) return;
  if (!(err instanceof RefusedError)) return hostEvent('refusal', err.message);
  const settings = currentSettings();
  let spec;
  try {
    spec = settings && parseAppSpec(appFrame, settings);
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    return hostEvent('refusal', `a request's APP frame could not be read: ${e.message}`);
  }
  const owner = spec && fs.statSync(spec.root, { throwIfNoEntry: false })?.uid;
  if (!spec || owner === undefined) return hostEvent('refusal', err.message);
  appBook.refused(spec, owner, err.message);
}
