// The host status page's script (page.ts), inline under the page's nonce. Plain
// browser JavaScript, no libraries. It keeps every tenant from the WebSocket's
// snapshots (the first one full, later ones only what changed: ws-feed.ts), renders
// only the rows the filter lets through (idle apps folded away, at most `limit` rows),
// and keeps the last 10 minutes of totals for the charts.
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var token = document.querySelector('meta[name="lodge-token"]').content;
  var base = location.pathname.replace(/\/+$/, '');
  var HISTORY_MS = 10 * 60 * 1000;
  var PAGE_ROWS = 200;
  var tenants = new Map();
  var events = [];
  var lodged = null;
  var prev = new Map();
  var rate = new Map();
  var history = [];
  var lastTotal = null;
  var lastAt = 0;
  var view = { key: 'tenant', dir: 1, filter: '', idle: false, limit: PAGE_ROWS };
  var expanded = new Set();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function fmtBytes(n) {
    if (!n) return '0';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
  }
  function fmtNum(n) { return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2).replace(/\.?0+$/, '') || '0'; }
  function fmtSecs(s) {
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 120) return s.toFixed(1) + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }
  function fmtTime(ms) { return new Date(ms).toLocaleTimeString(); }
  function tenantName(t) { return t.name ? t.name + ' (' + t.uid + ')' : 'uid ' + t.uid; }
  function isIdle(a) {
    return a.state === 'idle-stopped' || (a.workers.length === 0 && a.state === 'running' && !(rate.get(a.root) > 0));
  }

  function ingest(msg) {
    if (msg.full) tenants.clear();
    msg.tenants.forEach(function (t) { tenants.set(t.uid, t); });
    (msg.gone || []).forEach(function (uid) { tenants.delete(uid); });
    if (msg.events) events = msg.events;
    lodged = msg.lodged;
    var total = 0, mem = 0;
    tenants.forEach(function (t) {
      t.apps.forEach(function (a) {
        total += a.requests.total;
        mem += a.memory;
        var p = prev.get(a.root);
        rate.set(a.root, p && msg.at > p.at ? Math.max(0, (a.requests.total - p.total) * 1000 / (msg.at - p.at)) : 0);
        prev.set(a.root, { total: a.requests.total, at: msg.at });
      });
    });
    var rps = lastTotal !== null && msg.at > lastAt ? Math.max(0, (total - lastTotal) * 1000 / (msg.at - lastAt)) : 0;
    lastTotal = total;
    lastAt = msg.at;
    history.push({ at: msg.at, rps: rps, mem: mem });
    while (history.length && history[0].at < msg.at - HISTORY_MS) history.shift();
    render();
  }

  var SORTS = {
    tenant: function (r) { return r.t.name || ''; },
    app: function (r) { return r.a.root; },
    state: function (r) { return r.a.state; },
    workers: function (r) { return r.a.workers.length; },
    memory: function (r) { return r.a.memory; },
    rps: function (r) { return rate.get(r.a.root) || 0; },
    requests: function (r) { return r.a.requests.total; },
    errors: function (r) { return r.a.requests['5xx']; },
    p95: function (r) { return r.a.latency.p95; },
    queue: function (r) { return r.a.queue.now; },
    restarts: function (r) { return r.a.restarts; }
  };

  function rowsToShow() {
    var all = [], idle = 0, f = view.filter.toLowerCase();
    tenants.forEach(function (t) {
      t.apps.forEach(function (a) {
        if (f && (tenantName(t) + ' ' + a.root + ' ' + a.entry + ' ' + a.state).toLowerCase().indexOf(f) < 0) return;
        if (!view.idle && isIdle(a) && !expanded.has(a.root)) { idle++; return; }
        all.push({ t: t, a: a });
      });
    });
    var key = SORTS[view.key], dir = view.dir;
    all.sort(function (x, y) {
      var p = key(x), q = key(y);
      var c = p < q ? -1 : p > q ? 1 : x.t.uid - y.t.uid || (x.a.root < y.a.root ? -1 : 1);
      return c * dir;
    });
    return { rows: all, idle: idle };
  }

  function cell(tr, text, cls) { var td = el('td', cls, text); tr.appendChild(td); return td; }
  function button(label, action, attrs, cls) {
    var b = el('button', cls, label);
    b.type = 'button';
    b.dataset.action = action;
    Object.keys(attrs).forEach(function (k) { b.dataset[k] = attrs[k]; });
    return b;
  }

  function appRow(r) {
    var a = r.a, tr = el('tr');
    tr.dataset.key = 'app:' + a.root;
    tr.dataset.root = a.root;
    cell(tr, tenantName(r.t));
    var app = cell(tr, a.root + '/' + a.entry, 'app');
    app.title = a.root + '/' + a.entry + ' (' + a.kind + ')';
    var st = el('span', 'state state-' + a.state, a.state);
    if (a.reason) st.title = a.reason;
    cell(tr, '').appendChild(st);
    cell(tr, a.workers.length + ' / ' + a.limits.processes, 'num');
    cell(tr, fmtBytes(a.memory) + (a.limits.memory ? ' / ' + fmtBytes(a.limits.memory * a.limits.processes) : ''), 'num');
    cell(tr, fmtNum(rate.get(a.root) || 0), 'num rps');
    cell(tr, a.requests.total, 'num requests');
    cell(tr, a.requests['5xx'], 'num');
    cell(tr, a.requests.total ? fmtSecs(a.latency.p95) : '', 'num');
    cell(tr, a.queue.now + (a.queue.peak ? ' (' + a.queue.peak + ')' : ''), 'num');
    cell(tr, a.restarts + (a.unstableRestarts ? ' (' + a.unstableRestarts + ' unstable)' : ''), 'num');
    var actions = cell(tr, '');
    actions.appendChild(button(expanded.has(a.root) ? 'hide' : 'workers', 'expand', { root: a.root }, 'link'));
    actions.appendChild(document.createTextNode(' '));
    actions.appendChild(button('restart', 'restart', { root: a.root }));
    return tr;
  }

  function detailRow(a) {
    var tr = el('tr', 'detail'), td = el('td');
    tr.dataset.key = 'detail:' + a.root;
    td.colSpan = 12;
    tr.appendChild(td);
    if (a.reason) td.appendChild(el('div', 'reason', a.reason));
    if (a.lastReload) td.appendChild(el('div', a.lastReload.ok ? '' : 'reason', 'last reload ' + fmtTime(a.lastReload.at) + ': ' + (a.lastReload.ok ? 'ok' : a.lastReload.error || 'failed')));
    var kills = Object.keys(a.kills || {}).filter(function (k) { return a.kills[k] > 0; });
    if (kills.length) td.appendChild(el('div', '', 'watchdog kills: ' + kills.map(function (k) { return k + ' ' + a.kills[k]; }).join(', ')));
    td.appendChild(el('div', '', 'limits: timeout ' + a.limits.timeout + ' s, CPU ' + a.limits.cpu + ' s, memory ' + fmtBytes(a.limits.memory) +
      ' per worker, ' + a.limits.processes + ' workers, idle ' + a.limits.idle + ' s; generation ' + a.generation + '; worker cap reached ' + a.capReached + ' times'));
    if (!a.workers.length) { td.appendChild(el('div', '', 'no workers running')); return tr; }
    var t = el('table'), head = el('tr');
    ['pid', 'state', 'age', 'requests', 'in progress', 'RSS', 'PSS', 'CPU', ''].forEach(function (h) { head.appendChild(el('th', '', h)); });
    t.appendChild(head);
    a.workers.forEach(function (w) {
      var wr = el('tr');
      wr.dataset.pid = w.pid;
      cell(wr, w.pid, 'num pid');
      cell(wr, w.state);
      cell(wr, fmtSecs(Math.max(0, (lodgedAt() - w.startedAt) / 1000)), 'num');
      cell(wr, w.requests, 'num');
      cell(wr, w.current ? w.current.method + ' ' + w.current.path + ' (' + fmtSecs(w.current.elapsed) + ')' + (w.inFlight ? ' and ' + (w.inFlight - 1) + ' more' : '') : '');
      cell(wr, w.rss !== undefined ? fmtBytes(w.rss) : '', 'num');
      cell(wr, w.pss !== undefined ? fmtBytes(w.pss) : '', 'num');
      cell(wr, w.cpu !== undefined ? fmtSecs(w.cpu) : '', 'num');
      cell(wr, '').appendChild(button('stop', 'stop', { pid: String(w.pid) }));
      t.appendChild(wr);
    });
    td.appendChild(t);
    return tr;
  }
  function lodgedAt() { return lastAt || Date.now(); }

  function stat(label, value) {
    var d = el('div', 'stat');
    d.appendChild(el('b', '', value));
    d.appendChild(el('span', '', label));
    return d;
  }

  function render() {
    var apps = 0, workers = 0, busy = 0, mem = 0, queued = 0, problems = 0;
    tenants.forEach(function (t) {
      t.apps.forEach(function (a) {
        apps++; workers += a.workers.length; mem += a.memory; queued += a.queue.now;
        a.workers.forEach(function (w) { if (w.state === 'busy' || w.state === 'lent') busy++; });
        if (a.state === 'crashed' || a.state === 'refused') problems++;
      });
    });
    var last = history[history.length - 1];
    if (lodged) $('lodged').textContent = 'lodged ' + lodged.version + ', pid ' + lodged.pid + ', up ' + fmtSecs(lodged.uptime) + ', ' + lodged.enforcement;
    var s = el('section');
    s.append(stat('tenants', tenants.size), stat('apps', apps), stat('workers (' + busy + ' busy)', workers),
      stat('requests/s', fmtNum(last ? last.rps : 0)), stat('memory', fmtBytes(mem)), stat('queued', queued), stat('crashed or refused', problems));
    s.children[3].id = 'total-rps';
    patchChildren($('summary'), s);

    var shown = rowsToShow(), trs = [];
    shown.rows.slice(0, view.limit).forEach(function (r) {
      trs.push(appRow(r));
      if (expanded.has(r.a.root)) trs.push(detailRow(r.a));
    });
    reconcile($('rows'), trs);
    var more = el('p');
    if (shown.rows.length > view.limit) {
      more.appendChild(document.createTextNode('showing ' + view.limit + ' of ' + shown.rows.length + ' apps '));
      more.appendChild(button('show ' + Math.min(PAGE_ROWS, shown.rows.length - view.limit) + ' more', 'more', {}, 'link'));
      more.appendChild(document.createTextNode(' '));
    }
    if (shown.idle) {
      more.appendChild(document.createTextNode(shown.idle + ' idle app' + (shown.idle === 1 ? '' : 's') + ' folded away '));
      more.appendChild(button('show them', 'idle', {}, 'link'));
    }
    patchChildren($('more'), more);
    document.querySelectorAll('th[data-sort]').forEach(function (th) {
      if (th.dataset.sort === view.key) th.setAttribute('aria-sort', view.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    chart('chart-rps', 'rps', fmtNum, 'rps-now');
    chart('chart-mem', 'mem', fmtBytes, 'mem-now');
    renderEvents();
  }

  // Each tick's rendering is patched onto the page's nodes rather than put in their
  // place: a button pressed while a snapshot comes in is still there when released
  // (else the click is lost), and a row keeps its node while its numbers change.
  function patch(old, neu) {
    if (old.nodeType !== neu.nodeType || old.nodeName !== neu.nodeName) { old.replaceWith(neu); return neu; }
    if (old.nodeType === 3) { if (old.nodeValue !== neu.nodeValue) old.nodeValue = neu.nodeValue; return old; }
    var i, name;
    for (i = old.attributes.length - 1; i >= 0; i--) {
      name = old.attributes[i].name;
      if (!neu.hasAttribute(name)) old.removeAttribute(name);
    }
    for (i = 0; i < neu.attributes.length; i++) {
      name = neu.attributes[i].name;
      if (old.getAttribute(name) !== neu.attributes[i].value) old.setAttribute(name, neu.attributes[i].value);
    }
    patchChildren(old, neu);
    return old;
  }
  /** old keeps its own attributes; its children become those of neu. */
  function patchChildren(old, neu) {
    var i, oc = old.childNodes, nc = Array.prototype.slice.call(neu.childNodes);
    for (i = 0; i < nc.length; i++) { if (i < oc.length) patch(oc[i], nc[i]); else old.appendChild(nc[i]); }
    while (oc.length > nc.length) old.removeChild(old.lastChild);
  }
  /** The table's rows by their data-key: kept and patched, new ones added, the rest removed. */
  function reconcile(parent, nodes) {
    var byKey = new Map();
    Array.prototype.forEach.call(parent.children, function (c) { byKey.set(c.dataset.key, c); });
    var keep = nodes.map(function (n) {
      var o = byKey.get(n.dataset.key);
      if (!o) return n;
      byKey.delete(n.dataset.key);
      return patch(o, n);
    });
    byKey.forEach(function (o) { o.remove(); });
    keep.forEach(function (n, i) { if (parent.children[i] !== n) parent.insertBefore(n, parent.children[i] || null); });
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function chart(id, field, fmt, nowId) {
    var svg = $(id), W = 600, H = 110, peak = 0;
    var now = lastAt || Date.now();
    history.forEach(function (h) { if (h[field] > peak) peak = h[field]; });
    var top = peak > 0 ? peak * 1.15 : 1;
    svg.replaceChildren();
    [0.25, 0.5, 0.75].forEach(function (f) {
      var g = document.createElementNS(SVG, 'line');
      g.setAttribute('class', 'grid');
      g.setAttribute('x1', '0'); g.setAttribute('x2', String(W));
      g.setAttribute('y1', String(H * f)); g.setAttribute('y2', String(H * f));
      svg.appendChild(g);
    });
    // The time axis grows with the history, from 30 s up to HISTORY_MS.
    var span = Math.min(HISTORY_MS, Math.max(30000, history.length ? now - history[0].at : 0));
    var pts = history.map(function (h) {
      var x = W - (now - h.at) / span * W;
      var y = H - 2 - (h[field] / top) * (H - 4);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('class', 'line');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(line);
    var last = history[history.length - 1];
    $(nowId).textContent = (last ? fmt(last[field]) : '') + ' now, max ' + fmt(peak) + ' over the last ' + fmtSecs(span / 1000);
  }

  function renderEvents() {
    var ol = $('events'), frag = document.createDocumentFragment();
    events.slice(-100).reverse().forEach(function (e) {
      var li = el('li');
      li.appendChild(el('time', '', fmtTime(e.at)));
      li.appendChild(el('span', 'kind kind-' + e.kind, e.kind));
      if (e.uid !== undefined || e.app) li.appendChild(el('span', 'who', (e.uid !== undefined ? 'uid ' + e.uid + ' ' : '') + (e.app || '') + ': '));
      li.appendChild(el('span', 'msg', e.message));
      frag.appendChild(li);
    });
    if (!events.length) frag.appendChild(el('li', '', 'no events yet'));
    ol.replaceChildren(frag);
  }

  function notice(text, bad) {
    var n = $('notice');
    n.textContent = text;
    n.className = bad ? 'bad' : '';
  }

  function post(path, params, what) {
    params.token = token;
    notice(what + '...');
    fetch(base + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString()
    }).then(function (r) {
      return r.text().then(function (t) {
        if (r.ok) notice(what + ': done');
        else notice(what + ': ' + r.status + ' ' + t.trim(), true);
      });
    }, function (err) { notice(what + ': ' + err.message, true); });
  }

  document.addEventListener('click', function (ev) {
    var b = ev.target.closest('button[data-action]');
    if (b) {
      var act = b.dataset.action;
      if (act === 'restart') post('/restart', { root: b.dataset.root }, 'restart ' + b.dataset.root);
      else if (act === 'stop') post('/stop', { pid: b.dataset.pid }, 'stop worker ' + b.dataset.pid);
      else if (act === 'expand') { if (expanded.has(b.dataset.root)) expanded.delete(b.dataset.root); else expanded.add(b.dataset.root); render(); }
      else if (act === 'more') { view.limit += PAGE_ROWS; render(); }
      else if (act === 'idle') { view.idle = true; $('show-idle').checked = true; render(); }
      return;
    }
    var th = ev.target.closest('th[data-sort]');
    if (th) {
      if (view.key === th.dataset.sort) view.dir = -view.dir;
      else { view.key = th.dataset.sort; view.dir = th.classList.contains('num') ? -1 : 1; }
      render();
    }
  });
  $('filter').addEventListener('input', function (ev) { view.filter = ev.target.value; view.limit = PAGE_ROWS; render(); });
  $('show-idle').addEventListener('change', function (ev) { view.idle = ev.target.checked; render(); });

  // Live: one WebSocket under the page's own location; on loss, retried with a
  // doubling delay (1 s up to 30 s), and the page says it is disconnected meanwhile.
  var retries = 0;
  function setConn(state, text) {
    document.body.dataset.conn = state;
    $('conn').textContent = text;
  }
  function connect() {
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + base + '/ws';
    setConn('connecting', 'connecting');
    var ws = new WebSocket(url);
    ws.addEventListener('open', function () { retries = 0; setConn('live', 'live'); });
    ws.addEventListener('message', function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (err) { notice('a message from lodged could not be read: ' + err.message, true); return; }
      if (msg.type === 'snapshot') ingest(msg);
    });
    ws.addEventListener('close', function () {
      var delay = Math.min(30000, 1000 * Math.pow(2, retries++));
      setConn('disconnected', 'disconnected, retrying in ' + Math.round(delay / 1000) + ' s');
      setTimeout(connect, delay);
    });
  }

  var first = JSON.parse($('lodge-initial').textContent);
  ingest({ type: 'snapshot', full: true, at: first.at, lodged: first.lodged, tenants: first.tenants, gone: [], events: first.events });
  connect();
})();
`;
