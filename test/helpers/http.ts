import * as http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the body with Transfer-Encoding: chunked, in pieces of this size. */
  chunked?: number;
  timeoutMs?: number;
  /** Accept what strict HTTP/1.1 parsing refuses (Apache 1.3's padded chunk sizes). */
  lenient?: boolean;
  /** A keep-alive agent to send it on; by default a connection of its own. */
  agent?: http.Agent;
}

/** One HTTP request to 127.0.0.1:port with the Host header of a tenant. */
export function request(port: number, host: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Host: `${host}:${port}`, ...opts.headers };
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
    if (body && !opts.chunked) headers['Content-Length'] = String(body.length);
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? (body ? 'POST' : 'GET'), headers, agent: opts.agent ?? false, insecureHTTPParser: opts.lenient });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`no answer to ${path} within ${opts.timeoutMs ?? 30_000} ms`)));
    // Whether it went on a kept-alive connection (the server may close one just as a
    // request goes out on it: a client sends that request again, RFC 9112 9.3.1).
    req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
      });
    });
    if (body && opts.chunked) {
      for (let i = 0; i < body.length; i += opts.chunked) req.write(body.subarray(i, i + opts.chunked));
    } else if (body) {
      req.write(body);
    }
    req.end();
  });
}
