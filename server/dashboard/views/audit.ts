// Audit log: every admin action (and dashboard sign-in), newest first, filtered by action and time; exportable.
import type { FastifyReply } from 'fastify'
import type { ServerContext } from '../../app.js'
import { AUDIT_CSV_COLUMNS } from '../../routes/admin.js'
import { badRequest, toCsv } from '../../service/util.js'
import { html, qs, time, type Safe } from '../html.js'
import { sendExport } from '../export.js'
import { input, select } from '../layout.js'

type Query = Record<string, string | undefined>

const WINDOWS: readonly (readonly [string, string])[] = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['all', 'All time'],
]
const SHOWN = 500

async function load(ctx: ServerContext, q: Query, limit: number) {
  const since = q.since || '30d'
  if (!WINDOWS.some(([v]) => v === since)) throw badRequest(`unknown time window "${since}"`)
  const entries = await ctx.queries.audit({
    since: since === 'all' ? undefined : since,
    action: q.action || undefined,
    limit,
  })
  return { since, entries }
}

export async function auditExport(ctx: ServerContext, q: Query, reply: FastifyReply) {
  const { entries } = await load(ctx, q, 100_000)
  return sendExport(reply, 'audit', q.format, { entries }, () => toCsv(AUDIT_CSV_COLUMNS, entries))
}

export async function auditPage(ctx: ServerContext, q: Query): Promise<Safe> {
  const { since, entries } = await load(ctx, q, SHOWN)
  const filters = { action: q.action, since }
  return html`<h1>Audit log</h1>
  <section class="panel" aria-labelledby="filter-h">
    <h2 id="filter-h">Filter</h2>
    <form method="get" action="/audit" class="filters" role="search" aria-label="Filter the audit log">
      ${input('action', 'Action', q.action, html`placeholder="e.g. policy.push" list="actions"`)}
      <datalist id="actions">${[
        'policy.push',
        'class.create',
        'enroll-secret.create',
        'enroll-secret.revoke',
        'token.create',
        'token.revoke',
        'device.revoke',
        'exemption.grant',
        'exemption.revoke',
        'dashboard.sign-in',
      ].map((a) => html`<option value="${a}"></option>`)}</datalist>
      ${select('since', 'Time window', WINDOWS, since, null)}
      <div class="actions"><button type="submit">Apply</button><a class="button secondary" href="/audit">Reset</a></div>
    </form>
  </section>
  <section class="panel">
    <div class="table-wrap"><table id="audit">
      <caption>${entries.length === SHOWN ? `The latest ${SHOWN} entries` : `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`}
        <span class="exports small">Export: <a href="/audit${qs({ ...filters, format: 'csv' })}" download>CSV</a>
        <a href="/audit${qs({ ...filters, format: 'json' })}" download>JSON</a></span></caption>
      <thead><tr><th scope="col" class="num">#</th><th scope="col">When</th><th scope="col">Action</th><th scope="col">Target</th>
        <th scope="col">Actor</th><th scope="col">Details</th></tr></thead>
      <tbody>${
        entries.length === 0
          ? html`<tr><td colspan="6" class="empty">No entries.</td></tr>`
          : entries.map(
              (e) => html`<tr><td class="num">${e.seq}</td><td>${time(e.at)}</td>
                <th scope="row" class="nowrap"><a href="/audit${qs({ action: e.action, since })}" class="mono small">${e.action}</a></th>
                <td class="mono small">${e.target ?? ''}</td>
                <td class="small">${e.actor ? html`<span class="mono">${e.actor}</span> <span class="muted">(${e.role})</span>` : html`<span class="muted">server</span>`}</td>
                <td class="mono small details">${Object.entries(e.details).map(
                  ([k, v]) =>
                    html`<span class="kv"><span class="k">${k}:</span> ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}</span>`,
                )}</td></tr>`,
            )
      }</tbody>
    </table></div>
  </section>`
}
