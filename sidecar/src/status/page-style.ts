// The host status page's style (page.ts), inline under the page's nonce.
export const PAGE_STYLE = String.raw`
:root { --fg: #1d2329; --muted: #66707a; --line: #d9dee3; --bg: #f6f7f9; --card: #fff;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: baseline; padding: 10px 20px; background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 18px; }
header #lodged { color: #c9d1d9; flex: 1; }
#conn { padding: 2px 10px; border-radius: 10px; font-weight: 600; background: #57606a; }
body[data-conn="live"] #conn { background: var(--ok); }
body[data-conn="disconnected"] #conn { background: var(--bad); }
body[data-conn="disconnected"] main { opacity: 0.6; }
main { padding: 12px 20px; }
#summary { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; flex: 1 1 380px; }
figcaption { color: var(--muted); font-size: 12px; display: flex; justify-content: space-between; }
figcaption b { color: var(--fg); }
svg.chart { width: 100%; height: 110px; display: block; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .line { fill: none; stroke-width: 1.5; }
#chart-rps .line { stroke: var(--accent); }
#chart-mem .line { stroke: #8250df; }
.tools { display: flex; gap: 16px; align-items: center; margin-bottom: 6px; }
#filter { width: 320px; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; }
#notice { color: var(--muted); }
#notice.bad { color: var(--bad); }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: #eef1f4; font-weight: 600; font-size: 12px; user-select: none; }
th[data-sort] { cursor: pointer; }
th[aria-sort="ascending"]::after { content: " \25B2"; }
th[aria-sort="descending"]::after { content: " \25BC"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.app { max-width: 360px; overflow: hidden; text-overflow: ellipsis; }
.state { padding: 0 6px; border-radius: 8px; font-size: 12px; }
.state-running { background: #dafbe1; color: var(--ok); }
.state-starting, .state-reloading { background: #fff8c5; color: var(--warn); }
.state-crashed, .state-refused { background: #ffebe9; color: var(--bad); }
.state-idle-stopped { background: #eef1f4; color: var(--muted); }
tr.detail td { background: #fafbfc; white-space: normal; }
tr.detail table { margin: 4px 0; }
.reason { color: var(--bad); font-family: ui-monospace, monospace; font-size: 12px; }
button { font: inherit; font-size: 12px; padding: 1px 8px; border: 1px solid var(--line); border-radius: 5px; background: #f6f8fa; cursor: pointer; }
button:hover { border-color: var(--accent); }
button.link { border: 0; background: none; color: var(--accent); padding: 0; }
#more { color: var(--muted); }
#events { list-style: none; padding: 0; margin: 0; background: var(--card); border: 1px solid var(--line); max-height: 320px; overflow: auto; }
#events li { padding: 3px 8px; border-bottom: 1px solid var(--line); font-size: 13px; }
#events time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: 8px; }
#events .kind { font-weight: 600; margin-right: 8px; }
#events .kind-kill, #events .kind-crash, #events .kind-start-failed, #events .kind-refusal { color: var(--bad); }
h2 { font-size: 15px; margin: 16px 0 6px; }
`;
