import { PairsError } from '../protocol/frames';

/**
 * A REQ frame's pairs, as decodePairs gives them (latin-1 strings, the same refusals),
 * but cut from one string of the whole payload: a REQ has some 60 names and values,
 * and one conversion with 60 cheap slices costs a quarter of 60 conversions. The
 * slices keep that string alive while they live, which is for the one request
 * (request-head.ts copies what it keeps longer).
 */
export function reqPairs(frame: Buffer, offset: number): Array<[string, string]> {
  const text = frame.toString('latin1', offset);
  const out: Array<[string, string]> = [];
  const end = frame.length;
  let at = offset;
  while (at < end) {
    if (at + 2 > end) throw new PairsError(`pair name length cut off at byte ${at}`);
    const nlen = (frame[at] << 8) | frame[at + 1];
    at += 2;
    if (at + nlen + 4 > end) throw new PairsError(`pair name of ${nlen} bytes runs past the payload`);
    const n = at - offset;
    at += nlen;
    const vlen = frame.readUInt32BE(at);
    at += 4;
    if (at + vlen > end) throw new PairsError(`value of '${text.slice(n, n + nlen)}' (${vlen} bytes) runs past the payload`);
    out.push([text.slice(n, n + nlen), text.slice(at - offset, at - offset + vlen)]);
    at += vlen;
  }
  return out;
}
