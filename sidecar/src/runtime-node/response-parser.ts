/**
 * The app server's answer on the in-process connection, read as an HTTP/1.1 client reads
 * it (RFC 9112): the status line and headers, then a body delimited by Content-Length,
 * by chunks, or by the end of the connection; none after a HEAD request or for 1xx, 204
 * and 304. 1xx answers other than 101 (103 Early Hints, 100 Continue) are skipped, as
 * the final answer follows them. After a 101 every byte is the upgraded protocol's.
 *
 * Incremental: bytes come as the connection delivers them, split anywhere. What the
 * parser reads goes to its sink as it comes; `push` and `eof` return what went wrong
 * (the app's answer is not HTTP, or it ended short) as a sentence, or undefined.
 * The head and a chunk's size line are bounded: an app cannot make the runtime buffer
 * more than APP_HEAD_MAX bytes of them.
 */
export interface ResponseSink {
  /** The final head (or a 101's): its headers as the app spelled them, in order. */
  onHead(status: number, headers: Array<[string, string]>): void;
  /** Bytes of the body (after a 101: of the upgraded protocol). */
  onBody(chunk: Buffer): void;
  /** The body is whole (after a 101: the app ended its side). */
  onEnd(): void;
}

/** Node's own client refuses a larger head (its parser's default limit). */
export const APP_HEAD_MAX = 16 * 1024;
/** A chunk size line with extensions longer than this is no honest one. */
const SIZE_LINE_MAX = 1024;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilEof,
  Upgraded,
  Done,
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEAD_CTL = /[\0-\x08\x0b\x0c\x0e-\x1f\x7f]/;
const DIGITS = /^[0-9]{1,15}$/;
const LAST_CHUNKED = /(?:^|,)[ \t]*chunked[ \t]*$/i;
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?$/;

export class ResponseParser {
  private sink!: ResponseSink;
  private state = State.Done;
  private noBody = false;
  /** Bytes of a head (or a size line, or trailers) not yet whole. */
  private pending?: Buffer;
  private left = 0;
  private got = false;
  /** The connection may carry another request once this response is done. */
  keepAlive = false;

  /** A new response, to a request that was a HEAD (`noBody`) or not. */
  begin(sink: ResponseSink, noBody: boolean): void {
    this.sink = sink;
    this.noBody = noBody;
    this.state = State.Head;
    this.pending = undefined;
    this.got = false;
    this.keepAlive = false;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  get upgraded(): boolean {
    return this.state === State.Upgraded;
  }

  /** True once any byte of the response came. */
  get started(): boolean {
    return this.got;
  }

  /**
   * Bytes from the app. After the response is done, further bytes are none of it:
   * the connection is not fit for another request (keepAlive goes false).
   */
  push(chunk: Buffer): string | undefined {
    if (chunk.length) this.got = true;
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let at = 0;
    while (at < buf.length) {
      switch (this.state) {
        case State.Head:
        case State.ChunkSize:
        case State.Trailers: {
          // A part read whole: the offset after it, -1 while it is not all there, or what is wrong.
          const r = this.state === State.Head ? this.head(buf, at) : this.state === State.ChunkSize ? this.chunkSize(buf, at) : this.trailers(buf, at);
          if (typeof r === 'string') return r;
          if (r < 0) return this.keep(buf, at);
          at = r;
          break;
        }
        case State.Length:
        case State.ChunkData: {
          const n = Math.min(this.left, buf.length - at);
          this.sink.onBody(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n));
          at += n;
          this.left -= n;
          if (this.left > 0) break;
          if (this.state === State.Length) this.finish(at < buf.length);
          else this.state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          // CRLF (or a bare LF) after each chunk's data.
          const r = lineEnd(buf, at);
          if (r === 0) return this.keep(buf, at);
          if (r < 0) return 'a chunk is longer than its size says';
          at += r;
          this.state = State.ChunkSize;
          break;
        }
        case State.UntilEof:
        case State.Upgraded:
          this.sink.onBody(at === 0 ? buf : buf.subarray(at));
          return undefined;
        case State.Done:
          this.keepAlive = false;
          return undefined;
      }
    }
    return undefined;
  }

  /** The app ended its side of the connection. */
  eof(): string | undefined {
    switch (this.state) {
      case State.Done:
        return undefined;
      case State.UntilEof:
      case State.Upgraded:
        this.state = State.Done;
        this.keepAlive = false;
        this.sink.onEnd();
        return undefined;
      case State.Head:
        return this.got ? 'the app closed the connection in the middle of its response head' : 'the app closed the connection without answering';
      default:
        return 'the app closed the connection in the middle of its response';
    }
  }

  // Bytes of a part not yet whole wait for the next push, up to a bound for each part.
  private keep(buf: Buffer, at: number): string | undefined {
    const rest = buf.length - at;
    if (this.state === State.Head && rest > APP_HEAD_MAX) return `the response head is larger than ${APP_HEAD_MAX} bytes`;
    if (this.state === State.Trailers && rest > APP_HEAD_MAX) return `the trailers are larger than ${APP_HEAD_MAX} bytes`;
    if (this.state === State.ChunkSize && rest > SIZE_LINE_MAX) return `a chunk size line is longer than ${SIZE_LINE_MAX} bytes`;
    this.pending = Buffer.from(buf.subarray(at));
    return undefined;
  }

  // `more`: bytes follow the response in what came; they are none of it, and the sink
  // must know before it decides on the connection.
  private finish(more: boolean): void {
    if (more) this.keepAlive = false;
    this.state = State.Done;
    this.sink.onEnd();
  }

  // A whole head from `at`: the offset after it, -1 if it is not whole yet, or what is wrong.
  private head(buf: Buffer, at: number): number | string {
    const end = headEnd(buf, at);
    if (end < 0) return -1;
    const after = buf[end + 1] === 13 ? end + 3 : end + 2;
    if (end - at > APP_HEAD_MAX) return `the response head is larger than ${APP_HEAD_MAX} bytes`;
    const text = buf.toString('latin1', at, end);
    const lines = text.split('\n');
    const first = STATUS_LINE.exec(stripCr(lines[0]));
    if (!first) return 'its status line is not HTTP/1.x';
    const minor = first[1];
    const status = Number(first[2]);
    if (status < 100) return `status ${first[2]} is not one`;
    const headers: Array<[string, string]> = [];
    let length = -1;
    let chunked = false;
    let te = false;
    let close = minor === '0';
    // No control character but HTAB anywhere in the head (CR and LF end its lines).
    if (HEAD_CTL.test(text)) return 'its head has a control character';
    for (let i = 1; i < lines.length; i++) {
      const line = stripCr(lines[i]);
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name)) return `its header line '${line.slice(0, 40)}' is not one`;
      if (line.includes('\r')) return `its header ${name} has a control character`;
      const value = ows(line, colon + 1);
      headers.push([name, value]);
      switch (name.length) {
        case 10:
          if (name.toLowerCase() === 'connection') {
            for (const t of value.toLowerCase().split(',')) {
              const token = t.trim();
              if (token === 'close') close = true;
              else if (token === 'keep-alive' && minor === '0') close = false;
            }
          }
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') {
            if (!DIGITS.test(value)) return `its Content-Length '${value.slice(0, 40)}' is not a length`;
            const n = Number(value);
            if (length >= 0 && n !== length) return 'it has two different Content-Length headers';
            length = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            te = true;
            chunked = LAST_CHUNKED.test(value);
          }
          break;
      }
    }
    if (status === 101) {
      this.state = State.Upgraded;
      this.keepAlive = false;
      this.sink.onHead(status, headers);
      return after;
    }
    // 1xx but 101: an interim answer, the final one follows.
    if (status < 200) return after;
    if (te && length >= 0) return 'it has both Content-Length and Transfer-Encoding';
    this.keepAlive = !close;
    this.sink.onHead(status, headers);
    if (this.noBody || status === 204 || status === 304) this.finish(after < buf.length);
    else if (chunked) this.state = State.ChunkSize;
    else if (te || length < 0) {
      // Only the end of the connection ends this body.
      this.keepAlive = false;
      this.state = State.UntilEof;
    } else if (length === 0) this.finish(after < buf.length);
    else {
      this.left = length;
      this.state = State.Length;
    }
    return after;
  }

  private chunkSize(buf: Buffer, at: number): number | string {
    const nl = buf.indexOf(10, at);
    if (nl < 0) return -1;
    const line = stripCr(buf.toString('latin1', at, nl));
    if (line.length > SIZE_LINE_MAX) return `a chunk size line is longer than ${SIZE_LINE_MAX} bytes`;
    const m = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;[^\r\n]*)?$/.exec(line);
    if (!m) return `'${line.slice(0, 40)}' is not a chunk size`;
    this.left = parseInt(m[1], 16);
    this.state = this.left === 0 ? State.Trailers : State.ChunkData;
    return nl + 1;
  }

  // Trailer lines after the last chunk, up to an empty line; dropped (HEAD went out already).
  private trailers(buf: Buffer, at: number): number | string {
    let from = at;
    for (;;) {
      const nl = buf.indexOf(10, from);
      if (nl < 0) return -1; // whole lines are read again with the rest: they are few and small
      const line = stripCr(buf.toString('latin1', from, nl));
      from = nl + 1;
      if (line === '') {
        this.finish(from < buf.length);
        return from;
      }
      if (from - at > APP_HEAD_MAX) return `the trailers are larger than ${APP_HEAD_MAX} bytes`;
      const colon = line.indexOf(':');
      if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return `its trailer line '${line.slice(0, 40)}' is not one`;
    }
  }
}

// Where the head from `at` ends: the offset of the LF that ends its last line (the empty
// line follows, as CRLF or LF), or -1 if it is not all there yet.
function headEnd(buf: Buffer, at: number): number {
  let nl = buf.indexOf(10, at);
  while (nl >= 0 && nl - at <= APP_HEAD_MAX) {
    const next = buf[nl + 1];
    if (next === 10) return nl;
    if (next === 13) {
      if (nl + 2 >= buf.length) return -1;
      if (buf[nl + 2] === 10) return nl;
    }
    if (next === undefined) return -1;
    nl = buf.indexOf(10, nl + 1);
  }
  return nl < 0 ? -1 : nl;
}

// The value after `from`, without the spaces and tabs around it (and nothing else: a
// value may end in a byte 0xA0, which String.trim would take).
function ows(line: string, from: number): string {
  let a = from;
  let b = line.length;
  while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++;
  while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--;
  return line.slice(a, b);
}

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

// The line end at `at`: its length (2 for CRLF, 1 for LF), 0 if more bytes are needed, -1 if none is there.
function lineEnd(buf: Buffer, at: number): number {
  if (buf[at] === 10) return 1;
  if (buf[at] !== 13) return -1;
  if (at + 1 >= buf.length) return 0;
  return buf[at + 1] === 10 ? 2 : -1;
}
