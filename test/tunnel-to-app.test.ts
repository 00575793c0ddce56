import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Site, startSite } from './helpers/site';
import { PID_APP } from './helpers/raw-frames';
import { FakeApache } from './helpers/fake-apache';

// mod_lodge marks every WebSocket handshake with the APP flag TUNNEL, whatever the
// backend, and sends no BODY_END after its REQ. A WSGI app cannot tunnel: lodged
// serves the handshake as the bodyless request it is, the app answers it as any other,
// and the connection to lodged serves on. (FakeApache plays mod_lodge on lodged's socket.)

let site: Site;
before(async () => {
  site = await startSite({ a: { '.htaccess': 'LodgeApp wsgi app.py\nLodgeProcesses 1\n', 'app.py': PID_APP } });
});
after(async () => site?.stop());

test('a WebSocket handshake to a WSGI app gets the app\'s ordinary answer, and the next request on the connection is served', async () => {
  const app: Array<[string, string]> = [['root', `${site.root}/a`], ['kind', 'wsgi'], ['entry', 'app.py']];
  const handshake = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', host: 'a.localhost' };
  const a = await FakeApache.connect(site.sb.socket);
  try {
    const first = await a.request({ app, path: '/', tunnel: true, headers: handshake });
    assert.equal(first.status, 200, first.error);
    assert.match(first.body.toString(), /^\d+$/);
    const second = await a.request({ app, path: '/', headers: { host: 'a.localhost' } });
    assert.equal(second.status, 200, second.error);
    assert.equal(second.body.toString(), first.body.toString(), 'the same worker, free again');
  } finally {
    a.close();
  }
});
