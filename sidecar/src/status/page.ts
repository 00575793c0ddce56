import { PAGE_SCRIPT } from './page-script';
import { PAGE_STYLE } from './page-style';
import { StatusSnapshot } from './schema';

export interface PageInput {
  /** The Content-Security-Policy nonce of this response's script and style. */
  nonce: string;
  /** The CSRF token the actions send back (web-csrf.ts). */
  token: string;
  /** The first snapshot, so the page shows something before its WebSocket opens. */
  snapshot: StatusSnapshot;
}

/**
 * The host status page: one document, nothing loaded from elsewhere (it works with no
 * network but the one to Apache). The script (page-script.ts) keeps the history for
 * the charts and draws everything from the snapshots the WebSocket brings.
 */
export function renderPage(p: PageInput): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="lodge-token" content="${attr(p.token)}">
<title>Lodge status</title>
<link rel="icon" href="data:,">
<style nonce="${attr(p.nonce)}">${PAGE_STYLE}</style>
</head>
<body data-conn="connecting">
<header><h1>Lodge status</h1><span id="lodged"></span><span id="conn" role="status">connecting</span></header>
<main>
<section id="summary" aria-label="Totals"></section>
<section class="charts">
<figure><figcaption><span>Requests/s</span><b id="rps-now"></b></figcaption><svg id="chart-rps" class="chart" viewBox="0 0 600 110" preserveAspectRatio="none" role="img" aria-label="Requests per second"></svg></figure>
<figure><figcaption><span>Memory of all workers</span><b id="mem-now"></b></figcaption><svg id="chart-mem" class="chart" viewBox="0 0 600 110" preserveAspectRatio="none" role="img" aria-label="Memory"></svg></figure>
</section>
<section>
<div class="tools">
<input id="filter" type="search" placeholder="Filter by tenant, uid, app or state" aria-label="Filter">
<label><input id="show-idle" type="checkbox"> show idle apps</label>
<span id="notice" role="status"></span>
</div>
<table id="apps">
<thead><tr>
<th data-sort="tenant">Tenant</th><th data-sort="app">App</th><th data-sort="state">State</th>
<th data-sort="workers" class="num">Workers</th><th data-sort="memory" class="num">Memory</th>
<th data-sort="rps" class="num">Req/s</th><th data-sort="requests" class="num">Requests</th>
<th data-sort="errors" class="num">5xx</th><th data-sort="p95" class="num">p95</th>
<th data-sort="queue" class="num">Queue</th><th data-sort="restarts" class="num">Restarts</th><th>Actions</th>
</tr></thead>
<tbody id="rows"></tbody>
</table>
<p id="more"></p>
</section>
<section><h2>Events</h2><ol id="events"></ol></section>
</main>
<script type="application/json" id="lodge-initial">${scriptJson(p.snapshot)}</script>
<script nonce="${attr(p.nonce)}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

function attr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** JSON inside a <script>: no `</script>` or `<!--` can end it early. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
