import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Site, forEachApache, startSite } from './helpers/site';
import { decodePairs } from '../sidecar/src/protocol/frames';
import { FakeSocketServer } from './helpers/fake-socket';

const APP = 'def application(e, s):\n    s("200 OK", [])\n    return [b"up"]\n';

/**
 * Stands in for lodged on its socket (named as the fake it is): records the APP
 * payload of each request, and answers ERROR 503, or, when silent, nothing at all,
 * as a lodged that hangs would. Only what Apache sends is looked at.
 */
class FakeLodged {
  apps: Array<Map<string, string>> = [];
  silent = false;
  private listener!: FakeSocketServer;

  static async listen(path: string): Promise<FakeLodged> {
    const f = new FakeLodged();
    f.listener = await FakeSocketServer.listen(path, (c) => f.serve(c));
    return f;
  }

  private serve(c: net.Socket): void {
    c.on('error', () => c.destroy());
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 8 && buf.length >= 8 + buf.readUInt32BE(4)) {
        const type = buf[0];
        const payload = buf.subarray(8, 8 + buf.readUInt32BE(4));
        buf = buf.subarray(8 + payload.length);
        if (type === 0x01) this.apps.push(new Map(decodePairs(payload)));
        if (type === 0x04 && !this.silent) {
          const msg = Buffer.from('fake lodged');
          const h = Buffer.alloc(12);
          h[0] = 0x13;
          h.writeUInt32BE(4 + msg.length, 4);
          h.writeUInt16BE(503, 8);
          c.write(Buffer.concat([h, msg]));
        }
      }
    });
  }

  close(): Promise<void> {
    return this.listener.close();
  }
}

forEachApache((apache) => {
  let site: Site;
  let fake: FakeLodged;
  before(async () => {
    site = await startSite({
      hp: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeTimeout 999999\n', 'app.py': APP },
      lanes: { '.htaccess': 'LodgeApp asgi main.py:app\nLodgeConcurrency 64\n', 'main.py': '', 'sub/.htaccess': 'LodgeConcurrency 1\n' },
      wsgilanes: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeConcurrency 3\n', 'app.py': APP },
    }, undefined, apache, {
      daemon: 'sandbox',
      hostDirectives: [
        'LodgeLimit tenant-requests 7', 'LodgeLimit tenant-processes 9', 'LodgeLimit tenant-memory 512M', 'LodgeLimit timeout 1',
        'LodgeLimit concurrency 5',
      ],
    });
    await site.sb.stopLodged();
    fake = await FakeLodged.listen(site.sb.socket);
  });
  after(async () => {
    await fake?.close();
    await site?.stop();
  });

  test("Apache's worker count and the host's per-tenant shares reach lodged as APP pairs", async () => {
    const r = await site.get('hp', '/');
    assert.equal(r.status, 503);
    const app = fake.apps.at(-1);
    assert.ok(app, 'an APP frame came');
    // The sandbox's sizing: MaxRequestWorkers 150 (2.4), MaxClients 150 (1.3).
    assert.equal(app.get('apache.workers'), '150');
    assert.equal(app.get('limit.tenant_requests'), '7');
    assert.equal(app.get('limit.tenant_processes'), '9');
    assert.equal(app.get('limit.tenant_memory'), String(512 * 1024 * 1024));
    assert.equal(app.get('timeout'), '999999', "the tenant's own value goes to lodged, which clamps it");
    assert.equal(app.get('concurrency'), '0', 'no LodgeConcurrency: 0, lodged\'s default');
    assert.equal(app.get('limit.concurrency'), '5', 'LodgeLimit concurrency');
  });

  test("a tenant's LodgeConcurrency reaches lodged as the APP pair concurrency, a subdirectory's line winning there", async () => {
    const lastApp = async (dir: string, path: string) => {
      assert.equal((await site.get(dir, path)).status, 503);
      const app = fake.apps.at(-1);
      assert.ok(app, 'an APP frame came');
      return app;
    };
    const top = await lastApp('lanes', '/');
    assert.equal(top.get('kind'), 'asgi');
    assert.equal(top.get('concurrency'), '64', "the tenant's own value, over the host's cap: lodged clamps it");
    assert.equal(top.get('limit.concurrency'), '5');
    const sub = await lastApp('lanes', '/sub/');
    assert.equal(sub.get('root'), top.get('root'), 'the same app');
    assert.equal(sub.get('concurrency'), '1');
    // Taken for a WSGI app too (a worker there holds one request; lodged knows).
    assert.equal((await lastApp('wsgilanes', '/')).get('concurrency'), '3');
  });

  // The same code on both servers; one is enough for a wait this long.
  if (apache === '2.4') {
    test("a tenant's LodgeTimeout 999999 never makes Apache wait on lodged past the host's cap (LodgeLimit timeout 1, plus the grace)", async () => {
      fake.silent = true;
      const r = await site.get('hp', '/', { timeoutMs: 150_000 });
      fake.silent = false;
      assert.equal(r.status, 504);
      assert.match(site.errorLog(), /LG00009: lodge: lodged sent nothing for 61 s/);
    });
  }
});
