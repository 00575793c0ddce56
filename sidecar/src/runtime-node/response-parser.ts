/**
 * The app's response read with Node's own HTTP parser (llhttp, as Node's http client
 * uses it), without the client's request and message objects around it: those cost
 * more per request than the rest of the worker's own work for a small response.
 */

interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(chunk: Buffer): number | Error;
  finish(): number | Error | undefined;
  [slot: number]: unknown;
}
interface ParserClass {
  new (): NativeParser;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

// Node's own module for its http client and server (no type declarations: the shapes
// above are the parts used here, as Node 18-22 have them).
const { HTTPParser } = require('_http_common') as { HTTPParser: ParserClass };

export interface ResponseEvents {
  /** The head: status and raw headers (name, value, name, value…). `upgrade`: a 101 that takes the connection. */
  head(status: number, rawHeaders: string[], upgrade: boolean, keepAlive: boolean): void;
  body(bytes: Buffer): void;
  complete(): void;
}

export class ResponseParser {
  private readonly parser = new HTTPParser();
  private partial: string[] = [];
  /** The message being parsed is a 1xx: its end is not the response's. */
  private interim = false;
  /** A 101 was parsed: the bytes after its head are the app's first tunnel bytes. */
  upgraded = false;

  /** `head` is true for a HEAD request: its response has no body, whatever it says. */
  constructor(headRequest: boolean, on: ResponseEvents) {
    const p = this.parser;
    p.initialize(HTTPParser.RESPONSE, {});
    // Headers split over reads (or very many) come in pieces before the head is complete.
    p[HTTPParser.kOnHeaders] = (headers: string[]) => {
      this.partial.push(...headers);
    };
    p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, _msg: unknown, upgrade: boolean, keepAlive: boolean) => {
      const raw = headers ?? this.partial;
      this.partial = [];
      // 1xx other than 101 (103 Early Hints, a 100 sent anyway): not the response; the
      // real one follows on the connection.
      this.interim = status >= 100 && status < 200 && status !== 101;
      if (this.interim) return 1;
      this.upgraded = upgrade && status === 101;
      on.head(status, raw, this.upgraded, keepAlive);
      // 2: no body, the rest is the tunnel's; 1: no body (HEAD).
      return this.upgraded ? 2 : headRequest ? 1 : 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer, start?: number, len?: number) => on.body(typeof start === 'number' ? b.subarray(start, start + (len ?? 0)) : b);
    p[HTTPParser.kOnMessageComplete] = () => {
      if (this.interim) this.interim = false;
      else on.complete();
    };
  }

  /** The bytes the parser took (less than given after a 101's head), or its error. */
  execute(chunk: Buffer): number | Error {
    return this.parser.execute(chunk);
  }

  /** The app ended the connection: a body that runs to the close is complete now (or an Error). */
  finish(): Error | undefined {
    const r = this.parser.finish();
    return r instanceof Error ? r : undefined;
  }
}
