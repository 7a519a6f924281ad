// Findings explorer: by app, class, status and time window; the current view exports as CSV (the admin API's columns)
// or JSON through the same URL with format=csv|json.
import type { FastifyReply } from 'fastify'
import type { ServerContext } from '../../app.js'
import { FINDINGS_CSV_COLUMNS, findingsCsvRows } from '../../routes/admin.js'
import type { FindingsQuery } from '../../protocol.js'
import { badRequest, toCsv } from '../../service/util.js'
import { filterChoices } from '../data.js'
import { sendExport } from '../export.js'
import { html, qs, time, type Safe } from '../html.js'
import { input, pill, select } from '../layout.js'

type Query = Record<string, string | undefined>
type Finding = Awaited<ReturnType<ServerContext['queries']['findings']>>[number]

const WINDOWS: readonly (readonly [string, string])[] = [
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['all', 'All time'],
]
const DEFAULT_WINDOW = '7d'
const SHOWN = 500
const EXPORT_MAX = 100_000

function toQuery(q: Query, limit: number): FindingsQuery {
  const since = q.since || DEFAULT_WINDOW
  if (!WINDOWS.some(([v]) => v === since) && !/^\d{4}-\d{2}-\d{2}/.test(since))
    throw badRequest(`unknown time window "${since}"`)
  if (q.status && q.status !== 'open' && q.status !== 'remediated') throw badRequest(`unknown status "${q.status}"`)
  return {
    app: q.app || undefined,
    class: q.class || undefined,
    device: q.device || undefined,
    status: (q.status || undefined) as FindingsQuery['status'],
    since: since === 'all' ? undefined : since,
    until: q.until || undefined,
    limit,
  }
}

export async function findingsExport(ctx: ServerContext, q: Query, reply: FastifyReply) {
  const findings = await ctx.queries.findings(toQuery(q, EXPORT_MAX))
  return sendExport(reply, 'findings', q.format, { findings }, () =>
    toCsv(FINDINGS_CSV_COLUMNS, findingsCsvRows(findings)),
  )
}

export function findingsTable(
  findings: Finding[],
  caption: Safe | string,
  showDevice = true,
  extra: Safe | string = '',
) {
  const cols = showDevice ? 8 : 7
  return html`<div class="table-wrap"><table id="findings">
    <caption>${caption} ${extra}</caption>
    <thead><tr><th scope="col">Scanned</th>${showDevice ? html`<th scope="col">Device</th><th scope="col">Class</th>` : ''}
      <th scope="col">App</th><th scope="col">Signal</th><th scope="col">Matched</th>${showDevice ? '' : html`<th scope="col">Subject</th>`}
      <th scope="col">Status</th><th scope="col">Actions → results</th></tr></thead>
    <tbody>${
      findings.length === 0
        ? html`<tr><td colspan="${cols}" class="empty">No findings.</td></tr>`
        : findings.map(
            (f) => html`<tr>
              <td>${time(f.scannedAt)}</td>
              ${
                showDevice
                  ? html`<th scope="row"><a href="/devices/${encodeURIComponent(f.deviceId)}">${f.hostname}</a></th><td>${f.class}</td>`
                  : ''
              }
              <td><a href="/findings${qs({ app: f.appId })}">${f.appName ?? f.appId}</a>${
                f.appName && f.appName !== f.appId ? html` <span class="muted small mono">${f.appId}</span>` : ''
              }</td>
              <td>${f.signal}</td><td class="mono small">${f.matched ?? ''}</td>
              ${showDevice ? '' : html`<td class="mono small">${f.subject ?? ''}</td>`}
              <td>${pill(f.status)}</td>
              <td>${
                f.actions.length === 0
                  ? html`<span class="muted">none</span>`
                  : f.actions.map((a) => html`<span class="mono small">${a.action}</span> ${pill(a.result)} `)
              }</td></tr>`,
          )
    }</tbody>
  </table></div>`
}

export async function findingsPage(ctx: ServerContext, q: Query): Promise<Safe> {
  const query = toQuery(q, SHOWN + 1)
  const [findings, { classes, apps }] = await Promise.all([ctx.queries.findings(query), filterChoices(ctx)])
  const since = q.since || DEFAULT_WINDOW
  const filters = { app: q.app, class: q.class, status: q.status, since, device: q.device, until: q.until }
  const more = findings.length > SHOWN
  return html`<h1>Findings</h1>
  <section class="panel" aria-labelledby="filter-h">
    <h2 id="filter-h">Filter</h2>
    <form method="get" action="/findings" class="filters" role="search" aria-label="Filter findings">
      ${input('app', 'App', q.app, html`list="apps" placeholder="app id" autocomplete="off"`)}
      <datalist id="apps">${apps.map((a) => html`<option value="${a}"></option>`)}</datalist>
      ${select('class', 'Class', classes, q.class)}
      ${select('status', 'Status', ['open', 'remediated'], q.status)}
      ${select('since', 'Time window', WINDOWS, since, null)}
      ${q.device ? html`<input type="hidden" name="device" value="${q.device}">` : ''}
      <div class="actions"><button type="submit">Apply</button><a class="button secondary" href="/findings">Reset</a></div>
    </form>
  </section>
  <section class="panel">
    ${findingsTable(
      findings.slice(0, SHOWN),
      more ? `The latest ${SHOWN} findings` : `${findings.length} finding${findings.length === 1 ? '' : 's'}`,
      true,
      html`<span class="exports small">Export this view: <a href="/findings${qs({ ...filters, format: 'csv' })}" download>CSV</a>
        <a href="/findings${qs({ ...filters, format: 'json' })}" download>JSON</a>
        ${more ? html`<span class="muted">(up to ${EXPORT_MAX.toLocaleString('en')} rows)</span>` : ''}</span>`,
    )}
  </section>`
}
