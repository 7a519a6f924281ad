// Overview: devices per class by status (the same numbers as GET /api/v1/admin/compliance), compliance over time,
// the most-found banned apps and the devices that went silent.
import type { ServerContext } from '../../app.js'
import { STATUSES } from '../../storage/schema.js'
import { complianceChart, type Series } from '../chart.js'
import { silentDevices, snapshotHistory, topApps } from '../data.js'
import { html, qs, time, type Safe } from '../html.js'
import { STATUS_LABEL } from '../layout.js'

const WEEK = 7 * 86_400_000

export async function overviewPage(ctx: ServerContext): Promise<Safe> {
  const db = ctx.storage.db
  const now = Date.now()
  const [summary, history, apps, silent] = await Promise.all([
    ctx.queries.compliance(),
    snapshotHistory(db, now - 30 * 86_400_000),
    topApps(db, now - WEEK),
    silentDevices(db, ctx.queries.cutoff(now)),
  ])

  // History plus the live numbers as the last point, so the chart ends at "now".
  const byClass = new Map<string, Series>(summary.classes.map((c) => [c.class, { class: c.class, points: [] }]))
  for (const h of history)
    byClass.get(h.class)?.points.push({ at: h.hour, total: h.total, ok: h.compliant + h.remediated })
  for (const c of summary.classes)
    byClass.get(c.class)!.points.push({ at: now, total: c.total, ok: c.compliant + c.remediated })

  const cell = (cls: string | undefined, status: string, n: number) =>
    html`<td class="num" data-class="${cls ?? '*'}" data-status="${status}">${
      n > 0
        ? html`<a href="/devices${qs({ class: cls, status: status === 'total' ? undefined : status })}">${n}</a>`
        : n
    }</td>`

  return html`<h1>Overview</h1>
  <ul class="cards" aria-label="All devices by status">
    <li class="card total"><span class="n" data-total="all">${summary.totals.total}</span><span class="l">Devices</span></li>
    ${STATUSES.map(
      (
        s,
      ) => html`<li class="card ${s}"><a href="/devices${qs({ status: s })}"><span class="n" data-total="${s}">${summary.totals[s]}</span></a>
        <span class="l">${STATUS_LABEL[s]}</span></li>`,
    )}
  </ul>

  <section class="panel" aria-labelledby="by-class">
    <div class="table-wrap"><table>
      <caption id="by-class">Devices per class by status
        <span class="muted">· unknown = not heard from for ${Math.round(summary.unknownAfterSec / 60)} min</span></caption>
      <thead><tr><th scope="col">Class</th>${STATUSES.map((s) => html`<th scope="col" class="num">${STATUS_LABEL[s]}</th>`)}
        <th scope="col" class="num">Total</th></tr></thead>
      <tbody>${
        summary.classes.length === 0
          ? html`<tr><td colspan="7" class="empty">No classes yet. Create one with <code>interdictctl class create NAME</code>.</td></tr>`
          : summary.classes.map(
              (c) => html`<tr><th scope="row"><a href="/devices${qs({ class: c.class })}">${c.class}</a></th>
                ${STATUSES.map((s) => cell(c.class, s, c[s]))}${cell(c.class, 'total', c.total)}</tr>`,
            )
      }</tbody>
      <tfoot><tr><th scope="row">All classes</th>${STATUSES.map((s) => cell(undefined, s, summary.totals[s]))}
        ${cell(undefined, 'total', summary.totals.total)}</tr></tfoot>
    </table></div>
  </section>

  <section class="panel" aria-labelledby="trend">
    <h2 id="trend">Compliance over time</h2>
    ${complianceChart([...byClass.values()], 'last 30 days, hourly')}
  </section>

  <div class="grid">
    <section class="panel" aria-labelledby="top-apps">
      <div class="table-wrap"><table>
        <caption id="top-apps">Most-found banned apps <span class="muted">· last 7 days</span></caption>
        <thead><tr><th scope="col">App</th><th scope="col" class="num">Devices</th><th scope="col" class="num">Findings</th>
          <th scope="col">Last found</th></tr></thead>
        <tbody>${
          apps.length === 0
            ? html`<tr><td colspan="4" class="empty">Nothing found in the last 7 days.</td></tr>`
            : apps.map(
                (
                  a,
                ) => html`<tr><th scope="row"><a href="/findings${qs({ app: a.app, since: '7d' })}">${a.name ?? a.app}</a>
                  <span class="muted small mono">${a.app}</span></th>
                  <td class="num"><a href="/devices${qs({ app: a.app })}">${a.devices}</a></td><td class="num">${a.findings}</td>
                  <td>${time(a.lastSeen)}</td></tr>`,
              )
        }</tbody>
      </table></div>
    </section>
    <section class="panel" aria-labelledby="silent">
      <div class="table-wrap"><table>
        <caption id="silent">Devices gone silent <span class="muted">· ${silent.total} in all</span></caption>
        <thead><tr><th scope="col">Device</th><th scope="col">Class</th><th scope="col">OS</th><th scope="col">Last seen</th></tr></thead>
        <tbody>${
          silent.devices.length === 0
            ? html`<tr><td colspan="4" class="empty">Every device has checked in recently.</td></tr>`
            : silent.devices.map(
                (d) => html`<tr><th scope="row"><a href="/devices/${encodeURIComponent(d.id)}">${d.hostname}</a></th>
                  <td>${d.class}</td><td>${d.os}</td><td>${time(d.lastSeen)}</td></tr>`,
              )
        }</tbody>
      </table></div>
      ${silent.total > silent.devices.length ? html`<p class="count"><a href="/devices?status=unknown">All ${silent.total} silent devices</a></p>` : ''}
    </section>
  </div>
  <p class="muted small">Generated ${time(summary.generatedAt)} UTC</p>`
}
