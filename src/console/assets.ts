/**
 * The console's own stylesheet and script, served from /console/assets/ so the page's Content-Security-Policy can
 * forbid inline scripts and styles. The charts are drawn by Chart.js, served from the installed package.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const CONSOLE_CSS = `
:root { --ink: #1d2330; --muted: #5d6678; --line: #dde1e8; --accent: #0b5cff; --ok: #137a3a; --bad: #b42318; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 1.5rem; padding: .7rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header .brand { font-weight: 650; }
header nav { display: flex; gap: 1rem; flex: 1; }
header nav a { color: var(--muted); text-decoration: none; padding: .2rem 0; }
header nav a.here { color: var(--ink); border-bottom: 2px solid var(--accent); }
header .who { color: var(--muted); font-size: .9rem; }
header form { margin: 0; }
main { max-width: 1240px; margin: 1.5rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.35rem; margin: 0 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .6rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin-bottom: 1rem; }
.card h3 { margin: 0 0 .5rem; font-size: 1rem; }
dl.facts { display: grid; grid-template-columns: 11rem 1fr; gap: .25rem 1rem; margin: 0 0 .8rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.flash { padding: .6rem .9rem; border-radius: 6px; margin-bottom: 1rem; }
.flash.ok { background: #e7f6ec; color: var(--ok); }
.flash.error { background: #fdecea; color: var(--bad); }
button, .button { font: inherit; border: 1px solid var(--line); background: #fff; border-radius: 6px; padding: .4rem .9rem; cursor: pointer; }
button.approve { background: var(--ok); border-color: var(--ok); color: #fff; }
button.reject { background: #fff; border-color: var(--bad); color: var(--bad); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
textarea, input[type=text], input[type=password], select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; }
textarea { width: 100%; min-height: 2.4rem; }
.actions { display: flex; gap: .6rem; align-items: center; margin-top: .5rem; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .4rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; font-size: .9rem; }
th { background: #fafbfc; color: var(--muted); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
table.log { table-layout: fixed; }
table.log td, table.log th { overflow-wrap: anywhere; }
table.log th:nth-child(1) { width: 8.5rem; } table.log th:nth-child(2) { width: 6.5rem; } table.log th:nth-child(3) { width: 7.5rem; }
table.log th:nth-child(4) { width: 5rem; } table.log th:nth-child(5) { width: 5rem; } table.log th:nth-child(6) { width: 6rem; } table.log th:nth-child(8) { width: 11rem; }
table.log td:nth-child(8) { font-size: .78rem; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem; background: #eef1f6; }
.badge.allowed, .badge.ok, .badge.approved, .badge.used { background: #e7f6ec; color: var(--ok); }
.badge.denied, .badge.error, .badge.rejected { background: #fdecea; color: var(--bad); }
.badge.expired, .badge.pending, .badge.unknown { background: #fff4e0; color: #8a5300; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
.muted { color: var(--muted); }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
ol.story { list-style: none; padding: 0; margin: 0; }
ol.story li { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--line); border-radius: 6px; padding: .7rem 1rem; margin-bottom: .6rem; }
ol.story li.call { border-left-color: var(--accent); }
ol.story li.approval { border-left-color: var(--ok); }
ol.story li.webhook { border-left-color: #8a5300; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin-bottom: 1rem; height: 320px; }
.signin { max-width: 420px; margin: 4rem auto; }
.signin input { width: 100%; margin: .4rem 0 .8rem; }
`;

/** Draws every chart whose data is in a JSON block on the page. Runs as a file: the CSP allows no inline script. */
export const CONSOLE_JS = `
(function () {
  var block = document.getElementById('chart-data');
  if (!block || !window.Chart) return;
  var data = JSON.parse(block.textContent);
  var palette = ['#0b5cff', '#137a3a', '#b42318', '#8a5300', '#6941c6', '#0e7490', '#c11574', '#4d5761'];
  function money(minor, decimals) {
    var negative = minor < 0; var digits = String(Math.abs(Math.round(minor)));
    if (decimals === 0) return (negative ? '-' : '') + digits;
    while (digits.length <= decimals) digits = '0' + digits;
    return (negative ? '-' : '') + digits.slice(0, -decimals) + '.' + digits.slice(-decimals);
  }
  document.querySelectorAll('canvas[data-chart]').forEach(function (canvas) {
    var which = canvas.getAttribute('data-chart');
    var config;
    if (which === 'denials') {
      config = { type: 'bar', data: { labels: data.days, datasets: [{ label: 'denied calls', data: data.denials, backgroundColor: '#b42318' },
          { label: 'waited for an approval', data: data.approvalWaits, backgroundColor: '#d9a441' }] },
        options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } };
    } else {
      var series = data.money[Number(which.split(':')[1])];
      config = { type: 'bar', data: { labels: data.days, datasets: series.byAgent.map(function (s, i) {
          return { label: s.agent + ' (' + s.tool + ')', data: s.minor, backgroundColor: palette[i % palette.length] }; }) },
        options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true,
          ticks: { callback: function (v) { return money(v, series.decimals) + ' ' + series.currency; } } } },
          plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ': ' + money(c.parsed.y, series.decimals) + ' ' + series.currency; } } } } } };
    }
    var chart = new window.Chart(canvas, config);
    canvas.setAttribute('data-rendered', String(chart.data.datasets.length));
  });
})();
`;

let chartJs: Buffer | null = null;

/** Chart.js's own UMD build, from the installed chart.js package. */
export function chartLibrary(): Buffer {
  if (chartJs === null) {
    const main = createRequire(import.meta.url).resolve('chart.js');
    chartJs = readFileSync(join(dirname(main), 'chart.umd.min.js'));
  }
  return chartJs;
}
