import { z } from 'zod';
import { log } from '../log';
import type { DashboardOwner } from '../pool/dashboard-owner';
import { DashboardView, renderDashboard, renderLive } from './dashboard-page';
import { readLogTail } from './log-tail';
import { StatusSnapshot, statusSnapshot } from './schema';
import { CsrfGuard, sessionOf } from './web-csrf';
import { StatusRequest } from './web-request';
import { StatusAnswer, htmlPage, originMatches, response, text } from './web-answer';

/** What the dashboard reads and does: the status model, seen with the tenant's uid. */
export interface DashboardSource {
  snapshot(filter: { uid: number }): StatusSnapshot;
  restartApp(root: string, filter: { uid: number }): boolean;
  clearErrors(root: string, filter: { uid: number }): boolean;
}

const actionForm = z.object({ token: z.string().max(256) }).strict();

/**
 * A tenant's dashboard (`LodgeDashboard` in its .htaccess, served by mod_lodge only
 * behind the Apache auth the tenant set there): its own apps, from the model with its
 * uid, and the log of the app the dashboard is of. `GET /` the page (`?part=live`
 * what it refreshes), `GET /json` the same as JSON, `POST /restart` and `POST /clear`
 * with the page's token. Who the tenant is comes from lodged's own checks of the app
 * directory (pool/dashboard-owner.ts), never from the request.
 */
export class DashboardWeb {
  constructor(private readonly source: DashboardSource, private readonly csrf = new CsrfGuard()) {}

  answer(owner: DashboardOwner, req: StatusRequest, body: Buffer): StatusAnswer {
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (req.path === '/restart' || req.path === '/clear') return this.action(owner, req, req.path, body);
    if (!read) return text(405, 'GET only', [['Allow', 'GET, HEAD']]);
    if (req.path === '/json') return this.json(owner, req);
    if (req.path !== '' && req.path !== '/') return text(404, 'not found');
    if (new URLSearchParams(req.query).get('part') === 'live') {
      return response(200, [['Content-Type', 'text/html; charset=utf-8']], Buffer.from(renderLive(this.view(owner, req)), 'utf8'));
    }
    return this.page(owner, req);
  }

  private view(owner: DashboardOwner, req: StatusRequest): DashboardView {
    return {
      root: owner.root,
      user: req.user ?? '',
      snapshot: this.source.snapshot({ uid: owner.uid }),
      logFile: owner.tenantLog,
      log: readLogTail(owner.root, owner.tenantLog, owner.uid),
    };
  }

  // The token is bound to the dashboard's app as well as to the user and session, so a
  // token from one dashboard (or the host page) is worth nothing on another.
  private tokenUser(owner: DashboardOwner, req: StatusRequest): string {
    return `${req.user ?? ''}\0dashboard\0${owner.root}`;
  }

  private page(owner: DashboardOwner, req: StatusRequest): StatusAnswer {
    return htmlPage(this.csrf, req, this.tokenUser(owner, req), (nonce, token) => renderDashboard(this.view(owner, req), req.base, nonce, token));
  }


  private json(owner: DashboardOwner, req: StatusRequest): StatusAnswer {
    const v = this.view(owner, req);
    const checked = statusSnapshot.safeParse(v.snapshot);
    if (!checked.success) {
      log.error(`dashboard of ${owner.root}: the snapshot does not match its schema: ${checked.error.message}`);
      return text(500, 'the dashboard\'s data is malformed; the host\'s log says why');
    }
    return response(200, [['Content-Type', 'application/json']], Buffer.from(JSON.stringify({ root: v.root, snapshot: checked.data, log: v.log })));
  }

  private action(owner: DashboardOwner, req: StatusRequest, path: '/restart' | '/clear', body: Buffer): StatusAnswer {
    if (req.method !== 'POST') return text(405, 'POST only, from the dashboard', [['Allow', 'POST']]);
    if (req.origin !== undefined && !originMatches(req.origin, req.host, req.https)) return text(403, 'the request\'s Origin is not this host');
    const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    if (!this.csrf.check(this.tokenUser(owner, req), sessionOf(req.cookie), form.token)) {
      log.warn(`dashboard of ${owner.root}: ${path.slice(1)} refused: no valid token (user ${req.user ?? '(none)'})`);
      return text(403, 'no valid token: reload the dashboard');
    }
    if (!actionForm.safeParse(form).success) return text(400, `${path.slice(1)}: only the page's token is expected`);
    const done = path === '/restart'
      ? this.source.restartApp(owner.root, { uid: owner.uid })
      : this.source.clearErrors(owner.root, { uid: owner.uid });
    if (!done) return text(404, 'the app has not run yet');
    log.info(`dashboard of ${owner.root}: ${req.user ?? '(no Apache user)'} ${path === '/restart' ? 'restarted the app' : 'cleared its errors'}`);
    return response(200, [['Content-Type', 'application/json']], Buffer.from(JSON.stringify({ ok: true })));
  }
}
