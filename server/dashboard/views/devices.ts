// Devices: a GET filter form (class, status, OS, last seen, app found) over the QueryService, and one device's page
// with its findings, the actions taken on them and their results.
import type { FastifyReply } from 'fastify'
import type { ServerContext } from '../../app.js'
import { DEVICES_CSV_COLUMNS } from '../../routes/admin.js'
import { STATUSES } from '../../storage/schema.js'
import { badRequest, toCsv } from '../../service/util.js'
import { devicesWithApp, distinctOs, filterChoices } from '../data.js'
import { sendExport } from '../export.js'
import { html, qs, time, type Safe } from '../html.js'
import { csrfField, input, notice, type PageUser, pill, STATUS_LABEL, select } from '../layout.js'
import { findingsTable } from './findings.js'

type Query = Record<string, string | undefined>

const SEEN: readonly (readonly [string, string])[] = [
  ['within-1h', 'In the last hour'],
  ['within-24h', 'In the last 24 hours'],
  ['within-7d', 'In the last 7 days'],
  ['over-1h', 'Not for over an hour'],
  ['over-24h', 'Not for over 24 hours'],
  ['over-7d', 'Not for over 7 days'],
]
const SHOWN = 500

function seenFilter(seen: string | undefined): { seenSince?: string; seenBefore?: string } {
  if (!seen) return {}
  const m = /^(within|over)-(\d+[hd])$/.exec(seen)
  if (!m || !SEEN.some(([v]) => v === seen)) throw badRequest(`unknown "last seen" choice "${seen}"`)
  return m[1] === 'within' ? { seenSince: m[2] } : { seenBefore: m[2] }
}

async function load(ctx: ServerContext, q: Query) {
  const status = q.status || undefined
  if (status && !(STATUSES as readonly string[]).includes(status) && status !== 'revoked')
    throw badRequest(`unknown status "${status}"`)
  let devices = await ctx.queries.devices({
    class: q.class || undefined,
    status: status as never,
    ...seenFilter(q.seen || undefined),
    limit: 100_000,
  })
  if (q.os) devices = devices.filter((d) => d.os === q.os)
  if (q.app) {
    const ids = await devicesWithApp(ctx.storage.db, q.app)
    devices = devices.filter((d) => ids.has(d.id))
  }
  return devices
}

export async function deviceExport(ctx: ServerContext, q: Query, reply: FastifyReply) {
  const devices = await load(ctx, q)
  return sendExport(reply, 'devices', q.format, { devices }, () => toCsv(DEVICES_CSV_COLUMNS, devices))
}

export async function devicesPage(ctx: ServerContext, q: Query): Promise<Safe> {
  const [devices, { classes, apps }, oses] = await Promise.all([
    load(ctx, q),
    filterChoices(ctx),
    distinctOs(ctx.storage.db),
  ])
  const filters = { class: q.class, status: q.status, os: q.os, seen: q.seen, app: q.app }
  return html`<h1>Devices</h1>
  <section class="panel" aria-labelledby="filter-h">
    <h2 id="filter-h">Filter</h2>
    <form method="get" action="/devices" class="filters" role="search" aria-label="Filter devices">
      ${select('class', 'Class', classes, q.class)}
      ${select(
        'status',
        'Status',
        [...STATUSES, 'revoked'].map((s) => [s, STATUS_LABEL[s as keyof typeof STATUS_LABEL]] as const),
        q.status,
      )}
      ${select('os', 'OS', oses, q.os)}
      ${select('seen', 'Last seen', SEEN, q.seen, 'Any time')}
      ${input('app', 'App found', q.app, html`list="apps" placeholder="app id, e.g. telegram" autocomplete="off"`)}
      <datalist id="apps">${apps.map((a) => html`<option value="${a}"></option>`)}</datalist>
      <div class="actions"><button type="submit">Apply</button><a class="button secondary" href="/devices">Reset</a></div>
    </form>
  </section>
  <section class="panel">
    <div class="table-wrap"><table id="devices">
      <caption>${devices.length} device${devices.length === 1 ? '' : 's'}
        ${devices.length > SHOWN ? html`<span class="muted">· showing the first ${SHOWN}; export for all</span>` : ''}
        <span class="exports small">Export: <a href="/devices${qs({ ...filters, format: 'csv' })}">CSV</a>
          <a href="/devices${qs({ ...filters, format: 'json' })}">JSON</a></span></caption>
      <thead><tr><th scope="col">Hostname</th><th scope="col">Class</th><th scope="col">Status</th>
        <th scope="col" class="num">Open findings</th><th scope="col" class="num">Bundle</th><th scope="col">OS</th>
        <th scope="col">Agent</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${
        devices.length === 0
          ? html`<tr><td colspan="8" class="empty">No devices match these filters.</td></tr>`
          : devices.slice(0, SHOWN).map(
              (
                d,
              ) => html`<tr data-device="${d.id}"><th scope="row"><a href="/devices/${encodeURIComponent(d.id)}">${d.hostname}</a></th>
                <td>${d.class}</td><td>${pill(d.status, STATUS_LABEL[d.status])}</td><td class="num">${d.openFindings}</td>
                <td class="num">${d.bundleVersion ?? '—'}</td><td>${d.os}</td><td class="mono">${d.agentVersion}</td>
                <td>${time(d.lastSeen)}</td></tr>`,
            )
      }</tbody>
    </table></div>
  </section>`
}

export async function devicePage(
  ctx: ServerContext,
  id: string,
  user: PageUser,
  flash?: string,
): Promise<Safe | undefined> {
  const [d, findings] = await Promise.all([ctx.queries.device(id), ctx.queries.findings({ device: id, limit: 200 })])
  if (!d) return undefined
  const current = ctx.policy.get(d.class)?.version ?? null
  const bundle =
    d.bundleVersion === null
      ? html`<span class="muted">none yet</span>`
      : html`v${d.bundleVersion}${
          current !== null && d.bundleVersion < current
            ? html` <span class="pill pending">behind: class is at v${current}</span>`
            : html` <span class="muted small">(current)</span>`
        }`
  const status = d.status as keyof typeof STATUS_LABEL
  return html`${flash === 'revoked' ? notice('ok', 'The device was revoked; its token no longer works.') : ''}
  <p class="small"><a href="/devices">← All devices</a></p>
  <h1>${d.hostname} ${pill(status, STATUS_LABEL[status])}</h1>
  ${d.clockWarning ? notice('info', d.clockWarning) : ''}
  <div class="grid">
    <section class="panel" aria-labelledby="facts">
      <h2 id="facts">Device</h2>
      <dl class="facts">
        <dt>Device id</dt><dd class="mono">${d.id}</dd>
        <dt>Class</dt><dd><a href="/devices${qs({ class: d.class })}">${d.class}</a></dd>
        <dt>OS</dt><dd>${d.os}</dd>
        <dt>Agent version</dt><dd class="mono">${d.agentVersion}</dd>
        <dt>Bundle version</dt><dd>${bundle}</dd>
        <dt>Open findings</dt><dd>${d.openFindings}</dd>
        <dt>Last heartbeat</dt><dd>${time(d.lastHeartbeatAt, 'never')}</dd>
        <dt>Last report</dt><dd>${time(d.lastReportAt, 'never')}</dd>
        <dt>Last seen</dt><dd>${time(d.lastSeen)}</dd>
        <dt>Enrolled</dt><dd>${time(d.enrolledAt)}</dd>
        <dt>Hardware id</dt><dd class="mono small">${d.hardwareId}</dd>
        ${d.revokedAt ? html`<dt>Revoked</dt><dd>${time(d.revokedAt)}</dd>` : ''}
      </dl>
      ${
        user.session.role === 'admin' && d.status !== 'revoked'
          ? html`<form method="post" action="/devices/${encodeURIComponent(d.id)}/revoke" class="actions inline-actions" data-confirm="Revoke this device? Its token stops working at once.">
              ${csrfField(user)}<a class="button secondary" href="/exemptions${qs({ device: d.id })}">Grant an exemption</a>
              <button type="submit" class="danger">Revoke device</button></form>`
          : ''
      }
    </section>
    <section class="panel" aria-labelledby="health">
      <h2 id="health">Agent health</h2>
      ${
        d.health && Object.keys(d.health).length
          ? html`<dl class="facts">${Object.entries(d.health).map(
              ([k, v]) => html`<dt>${k}</dt><dd class="mono">${String(v)}</dd>`,
            )}</dl>`
          : html`<p class="empty">No heartbeat health yet.</p>`
      }
    </section>
  </div>
  <section class="panel">
    ${findingsTable(findings, 'Findings, actions and results', false)}
  </section>
  <section class="panel">
    <div class="table-wrap"><table>
      <caption>Recent reports</caption>
      <thead><tr><th scope="col">Scanned</th><th scope="col">Received</th><th scope="col" class="num">Bundle</th>
        <th scope="col" class="num">Findings</th><th scope="col" class="num">Open</th><th scope="col">Status</th></tr></thead>
      <tbody>${
        d.recentReports.length === 0
          ? html`<tr><td colspan="6" class="empty">No reports yet.</td></tr>`
          : d.recentReports.map(
              (
                r,
              ) => html`<tr><td>${time(r.scannedAt)}</td><td>${time(r.receivedAt)}</td><td class="num">v${r.bundleVersion}</td>
                <td class="num">${r.findings}</td><td class="num">${r.openFindings}</td><td>${pill(r.status)}</td></tr>`,
            )
      }</tbody>
    </table></div>
  </section>`
}
