import { z } from 'zod';
import { log } from '../log';
import { renderPage } from './page';
import { prometheusText } from './prometheus';
import { StatusSource, statusSnapshot } from './schema';
import { CsrfGuard, sessionOf } from './web-csrf';
import { StatusRequest } from './web-request';
import { StatusFeed } from './ws-feed';
import type { DashboardWeb } from './dashboard-web';
import { StatusAnswer, htmlPage, originMatches, response, text } from './web-answer';

/** The page's WebSocket, under the status location. */
export const WS_PATH = '/ws';

/** Actions: POST, form-encoded, with the page's token. */
const actionForms = {
  '/restart': z.object({ token: z.string().max(256), root: z.string().min(1).max(4096) }).strict(),
  '/stop': z.object({ token: z.string().max(256), pid: z.string().regex(/^[1-9][0-9]{0,9}$/) }).strict(),
} as const;

/**
 * The host's status location (`SetHandler lodge-status`): the page, `?json`,
 * `?metrics` and `/metrics`, the live WebSocket, and the actions. Auth is Apache's,
 * in front of it; this adds what Apache cannot: the actions' CSRF token and the
 * WebSocket's Origin check.
 */
export class StatusWeb {
  readonly feed: StatusFeed;

  constructor(
    private readonly source: StatusSource,
    private readonly csrf = new CsrfGuard(),
    feedIntervalMs?: number,
    /** Tenants' dashboards (APP kind=dashboard), which share this lodged's connection code. */
    readonly dashboard?: DashboardWeb,
  ) {
    this.feed = new StatusFeed(source, feedIntervalMs);
  }

  /** `tunnel`: the APP carried the TUNNEL flag (a WebSocket handshake). */
  answer(req: StatusRequest, body: Buffer, tunnel: boolean): StatusAnswer {
    if (req.path === WS_PATH) return this.webSocket(req, tunnel);
    if (tunnel) return text(404, 'no WebSocket here');
    const action = actionForms[req.path as keyof typeof actionForms];
    if (action) return this.action(req, req.path as keyof typeof actionForms, body);
    const query = new URLSearchParams(req.query);
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (req.path === '/metrics' || (req.path === '' || req.path === '/') && (query.has('json') || query.has('metrics'))) {
      if (!read) return text(405, 'GET only', [['Allow', 'GET, HEAD']]);
      if (req.path === '/metrics' || !query.has('json')) return this.metrics();
      return this.json();
    }
    if (req.path !== '' && req.path !== '/') return text(404, 'not found');
    if (!read) return text(405, 'GET only', [['Allow', 'GET, HEAD']]);
    return this.page(req);
  }

  close(): void {
    this.feed.close();
  }

  private page(req: StatusRequest): StatusAnswer {
    return htmlPage(this.csrf, req, req.user, (nonce, token) => renderPage({ nonce, token, snapshot: this.source.snapshot() }));
  }

  private json(): StatusAnswer {
    const checked = statusSnapshot.safeParse(this.source.snapshot());
    if (!checked.success) {
      log.error(`status: the snapshot does not match its schema: ${checked.error.message}`);
      return text(500, 'the status snapshot is malformed; see lodged\'s log');
    }
    return response(200, [['Content-Type', 'application/json']], Buffer.from(JSON.stringify(checked.data)));
  }

  private metrics(): StatusAnswer {
    const body = prometheusText(this.source.snapshot());
    return response(200, [['Content-Type', 'text/plain; version=0.0.4; charset=utf-8']], Buffer.from(body, 'utf8'));
  }

  private webSocket(req: StatusRequest, tunnel: boolean): StatusAnswer {
    if (!tunnel) return text(426, 'the status page\'s WebSocket: connect with Upgrade: websocket', [['Upgrade', 'websocket']]);
    if (!originMatches(req.origin, req.host, req.https)) {
      log.warn(`status: WebSocket refused: Origin ${JSON.stringify(req.origin ?? '(none)')} is not the host ${JSON.stringify(req.host)}`);
      return text(403, 'the WebSocket\'s Origin is not this host');
    }
    return {
      kind: 'tunnel',
      open: (stream) => this.feed.accept(req.method, req.base + req.path, req.upgradeHeaders, stream),
    };
  }

  private action(req: StatusRequest, path: keyof typeof actionForms, body: Buffer): StatusAnswer {
    if (req.method !== 'POST') return text(405, 'POST only, from the status page', [['Allow', 'POST']]);
    // A browser names the page's origin on every POST; another site's is refused even
    // before the token is looked at.
    if (req.origin !== undefined && !originMatches(req.origin, req.host, req.https)) return text(403, 'the request\'s Origin is not this host');
    const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    if (!this.csrf.check(req.user, sessionOf(req.cookie), form.token)) {
      log.warn(`status: ${path.slice(1)} refused: no valid token (user ${req.user ?? '(none)'})`);
      return text(403, 'no valid token: reload the status page');
    }
    const parsed = actionForms[path].safeParse(form);
    if (!parsed.success) return text(400, `${path.slice(1)}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'form'}: ${i.message}`).join('; ')}`);
    const who = req.user ?? '(no Apache user)';
    if (path === '/restart') {
      const root = (parsed.data as { root: string }).root;
      if (!this.source.restartApp(root)) return text(404, `no app at ${root}`);
      log.info(`status: ${who} restarted ${root}`);
      return jsonAnswer({ ok: true, restarted: root });
    }
    const pid = Number((parsed.data as { pid: string }).pid);
    if (!this.source.stopWorker(pid)) return text(404, `no worker ${pid}`);
    log.info(`status: ${who} stopped worker ${pid}`);
    return jsonAnswer({ ok: true, stopped: pid });
  }
}

function jsonAnswer(value: unknown): StatusAnswer {
  return response(200, [['Content-Type', 'application/json']], Buffer.from(JSON.stringify(value)));
}
