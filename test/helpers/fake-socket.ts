import * as fs from 'node:fs';
import * as net from 'node:net';

/**
 * The unix socket a test's fake peer listens on (a FakeLodged standing in for lodged):
 * mode 0666 so Apache's children reach it, every connection kept so that close() can
 * cut them all.
 */
export class FakeSocketServer {
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(private readonly path: string, serve: (c: net.Socket) => void) {
    this.server = net.createServer((c) => {
      this.sockets.add(c);
      c.on('close', () => this.sockets.delete(c));
      serve(c);
    });
  }

  static async listen(path: string, serve: (c: net.Socket) => void): Promise<FakeSocketServer> {
    fs.rmSync(path, { force: true });
    const s = new FakeSocketServer(path, serve);
    await new Promise<void>((resolve) => s.server.listen(path, resolve));
    fs.chmodSync(path, 0o666);
    return s;
  }

  async close(): Promise<void> {
    for (const c of this.sockets) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }
}
