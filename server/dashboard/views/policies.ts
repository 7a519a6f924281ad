// Policies: the current bundle of every class with its rollout, the policies in force, the version history with a
// readable diff of each issue, and (admins only) push or dry-run of YAML pasted or uploaded.
import type { ServerContext } from '../../app.js'
import type { PolicyPushBody } from '../../protocol.js'
import type { BundlePayload } from '../../../policies/schema.js'
import { ApiError } from '../../service/util.js'
import { bundleHistory } from '../data.js'
import { type BundleDiff, diffBundles } from '../diff.js'
import type { Form } from '../forms.js'
import { html, qs, time, type Safe } from '../html.js'
import { csrfField, notice, type PageUser, pill } from '../layout.js'

type PushResult = Awaited<ReturnType<ServerContext['policy']['push']>>

const HISTORY = 40

function diffList(d: BundleDiff, reason: string): Safe {
  if (d.same)
    return html`<span class="muted">No rule changes (${reason === 'reissue' ? 're-signed before expiry' : reason})</span>`
  const items: Safe[] = [
    ...d.added.map(
      (a) => html`<li>${pill('added')} <strong>${a.name}</strong> <span class="mono small">${a.key}</span>
      → <span class="mono small">${a.actions.join(', ')}</span></li>`,
    ),
    ...d.removed.map(
      (a) => html`<li>${pill('removed')} <strong>${a.name}</strong> <span class="mono small">${a.key}</span></li>`,
    ),
    ...d.changed.map(
      (c) => html`<li>${pill('changed')} <strong>${c.name}</strong> <span class="mono small">${c.key}</span>
        <ul>
          ${c.actions ? html`<li>actions: <span class="mono small">${c.actions.from.join(', ')}</span> → <span class="mono small">${c.actions.to.join(', ')}</span></li>` : ''}
          ${c.match.map(
            (m) => html`<li>match <span class="mono small">${m.field}</span>:
              ${m.added.length ? html`+ <span class="mono small">${m.added.join(', ')}</span>` : ''}
              ${m.removed.length ? html` − <span class="mono small">${m.removed.join(', ')}</span>` : ''}</li>`,
          )}
          ${c.message ? html`<li>notify message changed</li>` : ''}
          ${c.renamed ? html`<li>renamed from “${c.renamed.from}”</li>` : ''}
        </ul></li>`,
    ),
  ]
  if (d.exemptions.added)
    items.push(html`<li>${pill('added')} ${d.exemptions.added} exemption${d.exemptions.added === 1 ? '' : 's'}</li>`)
  if (d.exemptions.removed)
    items.push(
      html`<li>${pill('removed')} ${d.exemptions.removed} exemption${d.exemptions.removed === 1 ? '' : 's'} (revoked or expired)</li>`,
    )
  return html`<ul>${items}</ul>`
}

function resultPanel(r: PushResult): Safe {
  const issued = r.classes.filter((c) => c.newVersion !== null)
  const head = r.dryRun
    ? `Dry run: this push would issue ${issued.length} new bundle${issued.length === 1 ? '' : 's'}. Nothing was changed.`
    : `Pushed policy set v${r.policySetVersion}: ${issued.length} new bundle${issued.length === 1 ? '' : 's'} issued.`
  return html`<section class="panel" aria-labelledby="result-h" id="push-result">
    <h2 id="result-h">${r.dryRun ? 'Dry-run result' : 'Push result'}</h2>
    ${notice(r.dryRun ? 'info' : 'ok', head)}
    <div class="grid">
      <div class="table-wrap"><table>
        <caption>Policies</caption>
        <thead><tr><th scope="col">Policy</th><th scope="col" class="num">Apps</th><th scope="col">Change</th></tr></thead>
        <tbody>${r.policies.map(
          (
            p,
          ) => html`<tr><th scope="row">${p.title} <span class="mono small muted">${p.id}</span></th><td class="num">${p.apps}</td>
            <td>${pill(p.status === 'updated' ? 'changed' : p.status === 'unchanged' ? 'unknown' : p.status, p.status)}</td></tr>`,
        )}</tbody>
      </table></div>
      <div class="table-wrap"><table>
        <caption>Bundles per class</caption>
        <thead><tr><th scope="col">Class</th><th scope="col">Version</th><th scope="col">Rules</th></tr></thead>
        <tbody>${r.classes.map(
          (c) => html`<tr><th scope="row">${c.class}${c.created ? html` ${pill('added', 'new class')}` : ''}</th>
            <td>${c.newVersion === null ? html`<span class="muted">unchanged (v${c.currentVersion})</span>` : html`v${c.currentVersion ?? 0} → <strong>v${c.newVersion}</strong>`}</td>
            <td class="small">${
              [
                c.added.length ? `+${c.added.length} added` : '',
                c.removed.length ? `−${c.removed.length} removed` : '',
                c.changed.length ? `${c.changed.length} changed` : '',
                c.exemptionsChanged ? 'exemptions changed' : '',
              ]
                .filter(Boolean)
                .join(', ') || '—'
            }</td></tr>`,
        )}</tbody>
      </table></div>
    </div>
  </section>`
}

function pushForm(user: PageUser, text = '', replace = false): Safe {
  return html`<section class="panel" aria-labelledby="push-h">
    <h2 id="push-h">Push policy</h2>
    <form method="post" action="/policies" enctype="multipart/form-data" class="stack" id="push-form">
      ${csrfField(user)}
      <div class="field"><label for="yaml">Policy YAML or JSON</label>
        <textarea id="yaml" name="yaml" spellcheck="false" placeholder="id: ban-telegram&#10;title: Telegram is banned&#10;apps: …">${text}</textarea></div>
      <div class="field"><label for="files">…or upload policy files</label>
        <input type="file" id="files" name="files" multiple accept=".yaml,.yml,.json,text/yaml,application/json"></div>
      <label class="check"><input type="checkbox" name="replace" value="1"${replace ? html` checked` : ''}>
        Replace the whole policy set (policies not in this push are removed)</label>
      <div class="actions">
        <button type="submit" name="mode" value="dry" class="secondary">Dry run</button>
        <button type="submit" name="mode" value="push" data-confirm="Push this policy to every affected device?">Push</button>
      </div>
    </form>
  </section>`
}

export async function policiesPage(
  ctx: ServerContext,
  user: PageUser,
  extra: { result?: Safe; error?: Safe; text?: string; replace?: boolean } = {},
): Promise<Safe> {
  const [list, rollout, hist] = await Promise.all([
    ctx.policy.list(),
    ctx.queries.rollout((cls) => ctx.policy.get(cls)?.version),
    bundleHistory(ctx.storage.db, HISTORY),
  ])
  const rolloutBy = new Map(rollout.classes.map((c) => [c.class, c]))
  const payloads = new Map<string, BundlePayload>()
  for (const r of [...hist.recent, ...hist.previous])
    payloads.set(`${r.class}:${r.version}`, (JSON.parse(r.signed) as { payload: BundlePayload }).payload)

  return html`<h1>Policies</h1>
  ${extra.error ?? ''}
  ${extra.result ?? ''}
  <section class="panel">
    <div class="table-wrap"><table id="bundles">
      <caption>Current bundle per class <span class="muted">· policy set v${list.policySetVersion} · signing key ${list.keyId}</span></caption>
      <thead><tr><th scope="col">Class</th><th scope="col" class="num">Version</th><th scope="col" class="num">Rules</th>
        <th scope="col">Issued</th><th scope="col">Expires</th><th scope="col" class="num">On current</th>
        <th scope="col">Rollout (devices per version)</th></tr></thead>
      <tbody>${
        list.classes.length === 0
          ? html`<tr><td colspan="7" class="empty">No classes yet.</td></tr>`
          : list.classes.map((c) => {
              const r = rolloutBy.get(c.class)
              return html`<tr data-class="${c.class}"><th scope="row">${c.class}</th><td class="num">${c.version === null ? '—' : `v${c.version}`}</td>
                <td class="num">${c.apps}</td><td>${time(c.issuedAt)}</td><td>${time(c.expiresAt)}</td>
                <td class="num">${r ? `${r.onCurrent} / ${r.devices}` : '0 / 0'}</td>
                <td>${
                  r?.versions.length
                    ? r.versions.map(
                        (v) =>
                          html`<span class="pill ${v.version === r.currentVersion ? 'compliant' : v.version === null ? 'unknown' : 'pending'}">${v.version === null ? 'no bundle yet' : `v${v.version}`}: ${v.devices}</span> `,
                      )
                    : html`<span class="muted">no devices</span>`
                }</td></tr>`
            })
      }</tbody>
    </table></div>
  </section>
  <section class="panel">
    <div class="table-wrap"><table>
      <caption>Policies in force</caption>
      <thead><tr><th scope="col">Policy</th><th scope="col">Apps</th><th scope="col">Classes</th></tr></thead>
      <tbody>${
        list.policies.length === 0
          ? html`<tr><td colspan="3" class="empty">No policy has been pushed yet.</td></tr>`
          : list.policies.map(
              (p) => html`<tr><th scope="row">${p.title} <span class="mono small muted">${p.id}</span></th>
                <td>${p.apps.map((a, i) => html`${i ? ', ' : ''}<a href="/findings${qs({ app: a })}" class="mono small">${a}</a>`)}</td>
                <td>${p.classes.join(', ')}</td></tr>`,
            )
      }</tbody>
    </table></div>
  </section>
  ${user.session.role === 'admin' ? pushForm(user, extra.text, extra.replace) : html`<p class="muted small">Auditors have read-only access: pushing policy needs an admin token.</p>`}
  <section class="panel diff">
    <div class="table-wrap"><table id="history">
      <caption>Version history <span class="muted">· the last ${HISTORY} bundles, each compared with the version before it</span></caption>
      <thead><tr><th scope="col">Issued</th><th scope="col">Class</th><th scope="col" class="num">Version</th>
        <th scope="col">Why</th><th scope="col">Changes from the previous version</th></tr></thead>
      <tbody>${hist.recent.map((r) => {
        const after = payloads.get(`${r.class}:${r.version}`)!
        const before = payloads.get(`${r.class}:${r.version - 1}`)
        const why =
          r.reason === 'push'
            ? html`push of policy set v${r.policy_set}${r.actor ? html`<br><span class="muted small mono">${r.actor}</span>` : ''}`
            : r.reason
        return html`<tr><td>${time(new Date(Number(r.issued_at)).toISOString())}</td><th scope="row">${r.class}</th>
          <td class="num">v${r.version}</td><td class="small">${why}</td>
          <td>${r.version === 1 && !before ? html`<span class="muted">First bundle: ${after.apps.length} rule${after.apps.length === 1 ? '' : 's'}</span>` : diffList(diffBundles(before, after), r.reason)}</td></tr>`
      })}</tbody>
    </table></div>
  </section>`
}

export async function pushPolicy(
  ctx: ServerContext,
  user: PageUser & { principal: Parameters<ServerContext['policy']['push']>[1] },
  form: Form,
): Promise<{ status: number; body: Safe }> {
  const text = form.get('yaml') ?? ''
  const replace = form.has('replace')
  const items: { file: string; text: string }[] = []
  if (text.trim()) items.push({ file: 'pasted text', text })
  for (const f of form.files)
    if (f.data.length) items.push({ file: f.filename || 'upload', text: f.data.toString('utf8') })
  if (items.length === 0) {
    const error = notice('error', 'Paste a policy or choose a file to push.')
    return { status: 400, body: await policiesPage(ctx, user, { error, text, replace }) }
  }
  const body: PolicyPushBody = { policies: items, dryRun: form.get('mode') !== 'push', replace }
  try {
    const result = await ctx.policy.push(body, user.principal)
    return {
      status: 200,
      body: await policiesPage(ctx, user, { result: resultPanel(result), text: result.dryRun ? text : '', replace }),
    }
  } catch (err) {
    if (!(err instanceof ApiError) || err.statusCode >= 500) throw err
    const error = notice('error', 'The policy was not pushed:', err.message)
    return { status: err.statusCode, body: await policiesPage(ctx, user, { error, text, replace }) }
  }
}
