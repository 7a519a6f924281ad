// Audit log: every admin action (and dashboard sign-in), newest first, filtered by action and time; exportable.
import type { FastifyReply } from 'fastify'
import type { ServerContext } from '../../app.js'
import { badRequest, toCsv } from '../../service/util.js'
import { html, qs, time, type Safe } from '../html.js'
import { input } from '../layout.js'

type Query = Record<string, string | undefined>

const WINDOWS: readonly (readonly [string, string])[] = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['all', 'All time'],
]
const SHOWN = 500

export async function auditPage(ctx: ServerContext, q: Query, reply: FastifyReply): Promise<Safe | undefined> {
  const since = q.since || '30d'
  if (!WINDOWS.some(([v]) => v === since)) throw badRequest(`unknown time window "${since}"`)
  const exporting = q.format === 'csv' || q.format === 'json'
  const entries = await ctx.queries.audit({
    since: since === 'all' ? undefined : since,
    action: q.action || undefined,
    limit: exporting ? 100_000 : SHOWN,
  })
  if (q.format === 'json') {
    reply.header('content-disposition', 'attachment; filename="audit.json"').send({ entries })
    return undefined
  }
  if (q.format === 'csv') {
    reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', 'attachment; filename="audit.csv"')
      .send(toCsv(['seq', 'at', 'actor', 'role', 'action', 'target', 'details'], entries))
    return undefined
  }
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
      <div class="field"><label for="f-since">Time window</label><select id="f-since" name="since">
        ${WINDOWS.map(([v, l]) => html`<option value="${v}"${v === since ? html` selected` : ''}>${l}</option>`)}
      </select></div>
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
