import type { AppStatus, StatusEvent, StatusSnapshot } from './schema';
import type { LogTail } from './log-tail';

/** What one dashboard response shows: a tenant's apps, and the log of the app it is of. */
export interface DashboardView {
  /** The app directory the dashboard belongs to (the tenant's own path). */
  root: string;
  /** Who Apache authenticated. */
  user: string;
  snapshot: StatusSnapshot;
  /** The tenant's log, relative to root, and its tail. */
  logFile: string;
  log: LogTail;
}

/** How often the page fetches its live part again. */
export const DASHBOARD_REFRESH_MS = 2000;

/**
 * A tenant's dashboard: everything rendered here, as escaped text; the script only
 * fetches the live part again (`?part=live`) every DASHBOARD_REFRESH_MS and puts it in
 * place, and sends the two actions with the page's token. Nothing is loaded from
 * elsewhere.
 */
export function renderDashboard(v: DashboardView, base: string, nonce: string, token: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lodge dashboard</title>
<link rel="icon" href="data:,">
<style nonce="${esc(nonce)}">${STYLE}</style>
</head>
<body>
<header><h1>Lodge dashboard</h1><span>${esc(v.user)}</span><span id="notice" role="status"></span></header>
<main>
<form id="actions" method="post">
<input type="hidden" name="token" value="${esc(token)}">
<button type="submit" formaction="${esc(base)}/restart" data-action="restart">Restart the app</button>
<button type="submit" formaction="${esc(base)}/clear" data-action="clear">Clear the errors</button>
</form>
<div id="live">${renderLive(v)}</div>
</main>
<script nonce="${esc(nonce)}">${SCRIPT.replace('REFRESH_MS', String(DASHBOARD_REFRESH_MS))}</script>
</body>
</html>
`;
}

/** The part of the page the script fetches again. */
export function renderLive(v: DashboardView): string {
  const apps = v.snapshot.tenants.flatMap((t) => t.apps);
  const events = v.snapshot.events;
  return `<section><h2>Apps</h2>${apps.length ? apps.map(renderApp).join('\n') : '<p>No app has run yet: open the app once.</p>'}</section>
<section><h2>Events</h2>${renderEvents(events)}</section>
<section><h2>Log <small>${esc(`${v.root}/${v.logFile}`)}, the last 64 KiB</small></h2>
${v.log.ok ? `<pre id="log">${esc(v.log.text)}</pre>` : `<p id="log">${esc(v.log.why)}</p>`}</section>`;
}

function renderApp(a: AppStatus): string {
  // A CPU limit of 0 is none (the tenant set none and the host capped nothing).
  const cpuLimit = a.limits.cpu > 0 ? `${a.limits.cpu} s per request` : 'no limit';
  const failure = a.state === 'crashed' || a.state === 'refused' ? a.reason : undefined;
  const reload = a.lastReload && !a.lastReload.ok ? a.lastReload.error : undefined;
  const kills = Object.entries(a.kills).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(', ') || 'none';
  const rows = a.workers.map((w) => `<tr><td class="pid">${w.pid}</td><td>${esc(w.state)}</td><td>${w.requests}</td>`
    + `<td>${w.rss !== undefined ? mib(w.rss) : '–'} of ${mib(a.limits.memory)}</td>`
    + `<td>${w.cpu !== undefined ? `${w.cpu.toFixed(2)} s` : '–'} (${cpuLimit})</td>`
    + `<td>${w.current ? esc(`${w.current.method} ${w.current.path} ${w.current.elapsed.toFixed(1)} s${w.inFlight ? ` and ${w.inFlight - 1} more` : ''}`) : ''}</td></tr>`).join('');
  return `<article class="app" data-root="${esc(a.root)}">
<h3>${esc(a.root)} <small>${esc(a.kind)} ${esc(a.entry)}</small> <span class="state ${esc(a.state)}">${esc(a.state)}</span></h3>
${failure ? `<div class="error"><b>Why:</b> <code class="reason">${esc(failure)}</code><br>The traceback is in the log below.</div>` : ''}
${reload ? `<div class="error"><b>The last reload failed:</b> <code>${esc(reload)}</code></div>` : ''}
<p>Workers ${a.workers.length} of ${a.limits.processes}; memory ${mib(a.memory)} (at most ${mib(a.limits.memory)} each);
timeout ${a.limits.timeout} s, CPU ${cpuLimit}, idle stop after ${a.limits.idle} s (the limits in force, after the host's caps).</p>
<p>Requests <b class="requests">${a.requests.total}</b>: 2xx ${a.requests['2xx']}, 3xx ${a.requests['3xx']}, 4xx ${a.requests['4xx']}, <span class="errors">5xx ${a.requests['5xx']}</span>;
p95 ${(a.latency.p95 * 1000).toFixed(1)} ms over the last minute; queue ${a.queue.now} (peak ${a.queue.peak}); stopped by the watchdogs: ${esc(kills)}; restarts ${a.restarts}.</p>
<table class="workers"><thead><tr><th>pid</th><th>state</th><th>requests</th><th>memory</th><th>CPU</th><th>now</th></tr></thead><tbody>${rows}</tbody></table>
</article>`;
}

function renderEvents(events: StatusEvent[]): string {
  if (!events.length) return '<p>None.</p>';
  return `<ol id="events">${events.slice(-50).reverse().map((e) => `<li class="${esc(e.kind)}"><time>${new Date(e.at).toISOString()}</time> <b>${esc(e.kind)}</b> ${esc(e.message)}</li>`).join('')}</ol>`;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Text and attribute values: nothing of the tenant's (log lines, messages) is markup. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const STYLE = String.raw`
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1d2329; background: #f6f7f9; }
header { display: flex; gap: 16px; align-items: baseline; padding: 10px 20px; background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 18px; }
main { padding: 12px 20px; }
.app { background: #fff; border: 1px solid #d9dee3; border-radius: 6px; padding: 6px 12px; margin-bottom: 12px; }
.state { padding: 1px 8px; border-radius: 8px; background: #57606a; color: #fff; font-size: 12px; }
.state.running { background: #1a7f37; } .state.crashed, .state.refused { background: #cf222e; }
.error { border-left: 4px solid #cf222e; padding: 4px 8px; background: #fff5f5; margin: 6px 0; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; border-bottom: 1px solid #d9dee3; text-align: left; }
pre#log { background: #0d1117; color: #c9d1d9; padding: 8px; max-height: 480px; overflow: auto; white-space: pre-wrap; }
`;

// Fetches the live part again, and sends the actions with fetch (the browser adds the
// Origin, which lodged checks beside the token).
const SCRIPT = String.raw`
(function () {
  var live = document.getElementById('live');
  var notice = document.getElementById('notice');
  var base = location.pathname.replace(/\/+$/, '');
  function refresh() {
    fetch(base + '/?part=live', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString('<div>' + html + '</div>', 'text/html');
      var logBefore = document.getElementById('log');
      var atEnd = logBefore && logBefore.scrollTop + logBefore.clientHeight >= logBefore.scrollHeight - 4;
      live.replaceChildren.apply(live, Array.prototype.slice.call(doc.body.firstChild.childNodes));
      var log = document.getElementById('log');
      if (log && atEnd !== false) log.scrollTop = log.scrollHeight;
      document.body.dataset.live = 'yes';
    }).catch(function (e) {
      document.body.dataset.live = 'no';
      notice.textContent = 'cannot refresh: ' + e.message;
    });
  }
  document.getElementById('actions').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var action = ev.submitter && ev.submitter.dataset.action;
    var body = new URLSearchParams(new FormData(ev.target));
    notice.textContent = action + '…';
    fetch(base + '/' + action, { method: 'POST', body: body, credentials: 'same-origin' }).then(function (r) {
      return r.text().then(function (t) {
        notice.textContent = r.ok ? action + ': done' : action + ': ' + t;
        refresh();
      });
    });
  });
  setInterval(refresh, REFRESH_MS);
})();
`;
