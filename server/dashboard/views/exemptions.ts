// Exemptions: grant (a device or a class, one app, reason, expiry), list and revoke, through the exemptions service
// (server/service/exemptions.ts), which re-issues the affected bundles and audits. Expired ones stop applying by
// themselves (the bundle drops them at the next re-issue; agents ignore lapsed ones meanwhile).
import type { ServerContext } from '../../app.js'
import type { Principal } from '../../service/auth.js'
import type { ExemptionQuery } from '../../service/exemptions.js'
import { ApiError, badRequest } from '../../service/util.js'
import { filterChoices } from '../data.js'
import type { Form } from '../forms.js'
import { html, qs, time, type Safe } from '../html.js'
import { csrfField, notice, type PageUser, pill, select } from '../layout.js'

type Query = Record<string, string | undefined>
type User = PageUser & { principal: Principal }

function service(ctx: ServerContext) {
  const svc = ctx.integrations?.exemptions
  if (!svc) throw new ApiError(503, 'unavailable', 'exemptions are not available on this server')
  return svc
}

const EXPIRES: readonly (readonly [string, string])[] = [
  ['1h', '1 hour'],
  ['24h', '24 hours'],
  ['7d', '7 days'],
  ['30d', '30 days'],
  ['12w', '12 weeks'],
]
const STATUS: readonly (readonly [string, string])[] = [
  ['active', 'Active'],
  ['expired', 'Expired'],
  ['revoked', 'Revoked'],
]

interface Prefill {
  scope?: string
  device?: string
  class?: string
  app?: string
  reason?: string
  expiresIn?: string
  expiresAt?: string
  approver?: string
}

function grantForm(user: PageUser, apps: string[], classes: string[], v: Prefill): Safe {
  const scope = v.scope ?? (v.device ? 'device' : 'class')
  return html`<section class="panel" aria-labelledby="grant-h">
    <h2 id="grant-h">Grant an exemption</h2>
    <form method="post" action="/exemptions" class="stack" id="grant-form">
      ${csrfField(user)}
      <fieldset class="filters">
        <legend class="label">Applies to</legend>
        <label class="check"><input type="radio" name="scope" value="class"${scope === 'class' ? html` checked` : ''}> A whole class</label>
        <label class="check"><input type="radio" name="scope" value="device"${scope === 'device' ? html` checked` : ''}> One device</label>
      </fieldset>
      <div class="filters">
        ${select('class', 'Class', classes, v.class, 'Choose a class')}
        <div class="field"><label for="f-device">Device id</label>
          <input type="text" id="f-device" name="device" value="${v.device ?? ''}" placeholder="dev_…" autocomplete="off"></div>
        <div class="field"><label for="f-app">App</label><select id="f-app" name="app" required>
          <option value="">Choose an app</option>
          ${apps.map((a) => html`<option value="${a}"${a === v.app ? html` selected` : ''}>${a}</option>`)}
        </select></div>
      </div>
      <div class="field"><label for="f-reason">Reason</label>
        <input type="text" id="f-reason" name="reason" value="${v.reason ?? ''}" required maxlength="512"
          placeholder="e.g. approved vendor support channel, ticket SEC-123"></div>
      <div class="filters">
        ${select('expiresIn', 'Expires in', EXPIRES, v.expiresIn ?? '7d', 'Use the date instead')}
        <div class="field"><label for="f-expiresAt">…or expires at (UTC)</label>
          <input type="datetime-local" id="f-expiresAt" name="expiresAt" value="${v.expiresAt ?? ''}"></div>
        <div class="field"><label for="f-approver">Approved by <span class="muted">(optional)</span></label>
          <input type="text" id="f-approver" name="approver" value="${v.approver ?? ''}" maxlength="256"
            placeholder="defaults to your token"></div>
      </div>
      <div class="actions"><button type="submit">Grant exemption</button></div>
    </form>
  </section>`
}

export async function exemptionsPage(
  ctx: ServerContext,
  user: PageUser,
  q: Query,
  extra: { error?: Safe; prefill?: Prefill } = {},
): Promise<Safe> {
  const status = q.status ?? 'active'
  if (status !== 'all' && !STATUS.some(([s]) => s === status)) throw badRequest(`unknown status "${status}"`)
  const [list, { classes, apps }] = await Promise.all([
    service(ctx).list({ status: status === 'all' ? undefined : (status as ExemptionQuery['status']), limit: 1000 }),
    filterChoices(ctx),
  ])
  const flash =
    q.notice === 'granted'
      ? notice('ok', 'Exemption granted; the affected bundle was re-issued.')
      : q.notice === 'revoked'
        ? notice('ok', 'Exemption revoked; the affected bundle was re-issued.')
        : ''
  const admin = user.session.role === 'admin'
  return html`<h1>Exemptions</h1>
  ${flash}${extra.error ?? ''}
  ${
    admin
      ? grantForm(user, apps, classes, extra.prefill ?? { device: q.device, app: q.app, class: q.class })
      : html`<p class="muted small">Auditors have read-only access: granting and revoking exemptions needs an admin token.</p>`
  }
  <section class="panel">
    <form method="get" action="/exemptions" class="filters" role="search" aria-label="Filter exemptions">
      ${select('status', 'Status', [...STATUS, ['all', 'All']], status, null)}
      <div class="actions"><button type="submit">Apply</button></div>
    </form>
    <div class="table-wrap"><table id="exemptions">
      <caption>${list.length} exemption${list.length === 1 ? '' : 's'}</caption>
      <thead><tr><th scope="col">App</th><th scope="col">Applies to</th><th scope="col">Reason</th>
        <th scope="col">Approved by</th><th scope="col">Granted</th><th scope="col">Expires</th><th scope="col">Status</th>
        ${admin ? html`<th scope="col"><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
      <tbody>${
        list.length === 0
          ? html`<tr><td colspan="${admin ? 8 : 7}" class="empty">No ${status === 'all' ? '' : status} exemptions.</td></tr>`
          : list.map(
              (
                e,
              ) => html`<tr data-exemption="${e.id}"><th scope="row"><a href="/findings${qs({ app: e.app })}" class="mono">${e.app}</a></th>
                <td>${e.device ? html`device <a href="/devices/${encodeURIComponent(e.device)}" class="mono small">${e.device}</a>` : html`class <strong>${e.class}</strong>`}</td>
                <td>${e.reason}</td><td class="small">${e.approvedBy}</td><td>${time(e.createdAt)}</td>
                <td>${time(e.expiresAt)}</td><td>${pill(e.status === 'active' ? 'compliant' : e.status, e.status)}</td>
                ${
                  admin
                    ? html`<td>${
                        e.status === 'active'
                          ? html`<form method="post" action="/exemptions/${encodeURIComponent(e.id)}/revoke" data-confirm="Revoke this exemption?">
                              ${csrfField(user)}<button type="submit" class="danger" aria-label="Revoke exemption for ${e.app}">Revoke</button></form>`
                          : ''
                      }</td>`
                    : ''
                }</tr>`,
            )
      }</tbody>
    </table></div>
  </section>`
}

export async function grantExemption(
  ctx: ServerContext,
  user: User,
  form: Form,
): Promise<{ redirect: string } | { status: number; body: Safe }> {
  const v: Prefill = {
    scope: form.text('scope'),
    device: form.text('device'),
    class: form.text('class'),
    app: form.text('app'),
    reason: form.text('reason'),
    expiresIn: form.text('expiresIn'),
    expiresAt: form.text('expiresAt'),
    approver: form.text('approver'),
  }
  try {
    const scope = v.scope ?? (v.device ? 'device' : 'class')
    if (!v.app) throw badRequest('Choose the app to exempt.')
    if (!v.reason) throw badRequest('Give a reason.')
    if (v.reason.length > 512 || (v.approver?.length ?? 0) > 256 || (v.device?.length ?? 0) > 128)
      throw badRequest('A field is longer than allowed (reason 512, approver 256, device id 128 characters).')
    const target = scope === 'device' ? v.device : v.class
    if (!target) throw badRequest(scope === 'device' ? 'Give the device id.' : 'Choose the class.')
    // datetime-local has no zone: the label says UTC.
    const expiresAt = v.expiresAt ? `${v.expiresAt.length === 16 ? `${v.expiresAt}:00` : v.expiresAt}Z` : undefined
    if (!expiresAt && !v.expiresIn) throw badRequest('Choose when the exemption expires.')
    await service(ctx).grant(user.principal, {
      app: v.app,
      ...(scope === 'device' ? { device: target } : { class: target }),
      reason: v.reason,
      ...(expiresAt ? { expiresAt } : { expiresIn: v.expiresIn }),
      ...(v.approver ? { approver: v.approver } : {}),
    })
    return { redirect: '/exemptions?notice=granted' }
  } catch (err) {
    if (!(err instanceof ApiError) || err.statusCode >= 500) throw err
    const error = notice('error', `The exemption was not granted: ${err.message}`)
    return { status: err.statusCode, body: await exemptionsPage(ctx, user, {}, { error, prefill: v }) }
  }
}

export async function revokeExemption(ctx: ServerContext, user: User, id: string) {
  await service(ctx).revoke(user.principal, id)
}
