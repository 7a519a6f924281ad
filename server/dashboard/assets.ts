// The dashboard's one stylesheet and one tiny script, kept as strings so the bundled server executable needs no files
// next to it. Served with a content hash in the URL and cached for a year.
import { createHash } from 'node:crypto'

export const CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1b2430; --muted: #5b6675; --line: #dfe3e8; --accent: #1d4ed8;
  --accent-soft: #e8efff; --ok: #137a3f; --ok-bg: #e3f5ea; --bad: #b42318; --bad-bg: #fde8e6; --fix: #175cd3;
  --fix-bg: #e5efff; --unk: #4b5563; --unk-bg: #eceef1; --pend: #8a5a00; --pend-bg: #fff3d6; --focus: #f59e0b;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45; color: var(--text); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 3px; }
.skip { position: absolute; left: -9999px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .4rem .8rem; z-index: 10; }
header.top { background: #111827; color: #e5e7eb; }
header.top .bar { max-width: 1280px; margin: 0 auto; padding: 0 1.5rem; display: flex; align-items: center; gap: 1.5rem;
  min-height: 56px; flex-wrap: wrap; }
.brand { font-weight: 700; letter-spacing: .02em; color: #fff; font-size: 1.05rem; display: flex; align-items: center;
  gap: .5rem; }
.brand svg { display: block; }
nav.main ul { list-style: none; display: flex; gap: .25rem; margin: 0; padding: 0; flex-wrap: wrap; }
nav.main a { color: #cbd5e1; padding: .45rem .7rem; border-radius: 6px; display: block; }
nav.main a:hover { background: #1f2937; color: #fff; text-decoration: none; }
nav.main a[aria-current="page"] { background: #374151; color: #fff; }
.who { margin-left: auto; display: flex; align-items: center; gap: .75rem; font-size: .9rem; color: #cbd5e1; }
.who form { margin: 0; }
.who button { background: transparent; color: #e5e7eb; border: 1px solid #4b5563; padding: .3rem .7rem; }
.who button:hover { background: #1f2937; }
.role { font-size: .75rem; text-transform: uppercase; letter-spacing: .06em; background: #374151; color: #fff;
  border-radius: 999px; padding: .1rem .55rem; }
main { max-width: 1280px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.5rem; margin: .25rem 0 1.25rem; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
h3 { font-size: 1rem; margin: 1rem 0 .5rem; }
.muted { color: var(--muted); }
.small { font-size: .85rem; }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 1.1rem 1.25rem;
  margin-bottom: 1.25rem; box-shadow: 0 1px 2px rgba(16,24,40,.04); }
.grid { display: grid; gap: 1.25rem; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); }
.grid > .panel { margin-bottom: 0; }
.grid { margin-bottom: 1.25rem; }
.stack > * + * { margin-top: 1.25rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 1rem; margin-bottom: 1.25rem;
  list-style: none; padding: 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: .9rem 1rem;
  border-top: 4px solid var(--line); }
.card a { color: inherit; }
.card a:hover { text-decoration: none; }
.card .n { font-size: 1.8rem; font-weight: 700; display: block; line-height: 1.2; }
.card .l { color: var(--muted); font-size: .85rem; }
.card.compliant { border-top-color: var(--ok); } .card.noncompliant { border-top-color: var(--bad); }
.card.remediated { border-top-color: var(--fix); } .card.unknown { border-top-color: var(--unk); }
.card.pending { border-top-color: var(--pend); } .card.total { border-top-color: #111827; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: 0 0 .6rem; font-size: 1rem; }
caption .muted { font-weight: 400; font-size: .85rem; }
caption .exports { float: right; font-weight: 400; }
time, .nowrap { white-space: nowrap; }
.panel > form.filters + .table-wrap { margin-top: 1.25rem; }
form.inline-actions { margin-top: 1rem; }
.inline-actions .button, .inline-actions button { font-size: .85rem; padding: .3rem .75rem; }
.kv { display: block; }
.kv .k { color: var(--muted); }
th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: .78rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  background: #f9fafb; border-bottom: 1px solid var(--line); white-space: nowrap; }
tbody tr:hover { background: #f9fafb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot th, tfoot td { font-weight: 600; border-top: 2px solid var(--line); border-bottom: 0; }
.table-wrap { overflow-x: auto; }
.pill { display: inline-block; padding: .08rem .55rem; border-radius: 999px; font-size: .78rem; font-weight: 600;
  white-space: nowrap; background: var(--unk-bg); color: var(--unk); }
.pill.compliant, .pill.success, .pill.added { background: var(--ok-bg); color: var(--ok); }
.pill.noncompliant, .pill.failed, .pill.open, .pill.removed, .pill.revoked { background: var(--bad-bg); color: var(--bad); }
.pill.remediated, .pill.changed { background: var(--fix-bg); color: var(--fix); }
.pill.pending, .pill.skipped, .pill.expired { background: var(--pend-bg); color: var(--pend); }
.filters { display: flex; flex-wrap: wrap; gap: .75rem 1rem; align-items: flex-end; }
.field { display: flex; flex-direction: column; gap: .25rem; }
.field label, .label { font-size: .8rem; font-weight: 600; color: var(--muted); }
input[type=text], input[type=password], input[type=datetime-local], input[type=search], select, textarea {
  font: inherit; padding: .42rem .55rem; border: 1px solid #c5ccd6; border-radius: 6px; background: #fff;
  color: var(--text); min-width: 10rem; }
textarea { width: 100%; min-height: 14rem; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .85rem; }
input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid var(--focus); outline-offset: 1px; }
button, .button { font: inherit; font-weight: 600; padding: .45rem .95rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; display: inline-block; }
button:hover, .button:hover { filter: brightness(1.08); text-decoration: none; }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: #f2b8b2; padding: .25rem .7rem; font-size: .85rem; }
.actions { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; }
.check { display: flex; gap: .4rem; align-items: center; font-size: .92rem; }
.notice { border-radius: 8px; padding: .75rem 1rem; margin-bottom: 1.25rem; border: 1px solid; }
.notice.error { background: var(--bad-bg); border-color: #f2b8b2; color: #7a1a12; }
.notice.ok { background: var(--ok-bg); border-color: #a6dcb9; color: #0d5229; }
.notice.info { background: var(--accent-soft); border-color: #bcd0fb; color: #173a8a; }
.notice pre { white-space: pre-wrap; margin: .4rem 0 0; font-size: .82rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1.25rem; margin: 0; }
dl.facts dt { color: var(--muted); font-size: .88rem; }
dl.facts dd { margin: 0; word-break: break-word; }
td.details { max-width: 34rem; word-break: break-word; }
fieldset { border: 0; padding: 0; margin: 0; }
.exports { display: flex; gap: .5rem; align-items: center; }
.login { max-width: 420px; margin: 9vh auto; }
.login .panel { padding: 1.75rem; }
.login h1 { margin-top: 0; }
.login input { width: 100%; }
.chart { margin: 0; }
.chart svg.plot { width: 100%; height: auto; display: block; }
.chart .legend { display: flex; flex-wrap: wrap; gap: .4rem 1.1rem; list-style: none; padding: 0; margin: .5rem 0 0;
  font-size: .85rem; }
.chart .legend svg.swatch { display: inline; vertical-align: -1px; margin-right: .35rem; }
details summary { cursor: pointer; color: var(--accent); font-size: .88rem; margin-top: .5rem; }
.diff ul { margin: .25rem 0 .5rem; padding-left: 1.2rem; }
.diff li { margin: .15rem 0; }
.count { color: var(--muted); font-size: .85rem; margin: .5rem 0 0; }
.empty { color: var(--muted); padding: 1rem 0; }
@media (max-width: 720px) { .grid { grid-template-columns: 1fr; } main { padding: 1rem; } }
`

// Progressive enhancement only: ask before destructive buttons (revoke). Every page works without it.
export const JS = `
document.addEventListener('submit', function (e) {
  var b = e.submitter || e.target.querySelector('[data-confirm]')
  var msg = (b && b.getAttribute('data-confirm')) || e.target.getAttribute('data-confirm')
  if (msg && !window.confirm(msg)) e.preventDefault()
})
`

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 10)
export const CSS_PATH = `/assets/dashboard.${hash(CSS)}.css`
export const JS_PATH = `/assets/dashboard.${hash(JS)}.js`
