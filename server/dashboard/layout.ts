// Page chrome shared by every dashboard page: head, top bar with navigation and sign-out, notices, small widgets.
import type { Status } from '../storage/schema.js'
import { CSS_PATH, JS_PATH } from './assets.js'
import { html, type Safe } from './html.js'
import type { Session } from './session.js'

export interface PageUser {
  session: Session
  csrf: string
}

const NAV = [
  ['/', 'Overview'],
  ['/devices', 'Devices'],
  ['/findings', 'Findings'],
  ['/policies', 'Policies'],
  ['/exemptions', 'Exemptions'],
  ['/audit', 'Audit log'],
] as const

const LOGO = html`<svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
  <path d="M12 2 3 6v6c0 5 3.8 9.3 9 10 5.2-.7 9-5 9-10V6l-9-4z" fill="#3b82f6"/>
  <path d="M7.5 12.5 10.5 15.5 16.5 9" stroke="#fff" stroke-width="2.2" fill="none" stroke-linecap="round"/></svg>`

export function page(opts: { title: string; path?: string; user?: PageUser; body: Safe }): Safe {
  const nav = opts.user
    ? html`<nav class="main" aria-label="Main"><ul>${NAV.map(
        ([href, label]) =>
          html`<li><a href="${href}"${opts.path === href ? html` aria-current="page"` : ''}>${label}</a></li>`,
      )}</ul></nav>
      <div class="who"><span class="role">${opts.user.session.role}</span>
        <span class="mono">${opts.user.session.tokenId}</span>
        <form method="post" action="/logout">${csrfField(opts.user)}<button type="submit">Sign out</button></form>
      </div>`
    : ''
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · Interdict</title>
<link rel="stylesheet" href="${CSS_PATH}">
<script src="${JS_PATH}" defer></script>
</head>
<body>
<a class="skip" href="#content">Skip to content</a>
<header class="top"><div class="bar"><span class="brand">${LOGO} Interdict</span>${nav}</div></header>
<main id="content" tabindex="-1">
${opts.body}
</main>
</body>
</html>`
}

export const csrfField = (user: PageUser) => html`<input type="hidden" name="_csrf" value="${user.csrf}">`

export function notice(kind: 'error' | 'ok' | 'info', message: string | Safe, detail?: string): Safe {
  return html`<div class="notice ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${message}${
    detail ? html`<pre>${detail}</pre>` : ''
  }</div>`
}

export const STATUS_LABEL: Record<Status | 'revoked', string> = {
  compliant: 'Compliant',
  noncompliant: 'Noncompliant',
  remediated: 'Remediated',
  unknown: 'Unknown (silent)',
  pending: 'Pending',
  revoked: 'Revoked',
}

export const pill = (value: string, label = value) => html`<span class="pill ${value}">${label}</span>`

/** A <select> whose options keep the current choice; `''` is the "any" option. */
export function select(
  name: string,
  label: string,
  options: readonly (string | readonly [string, string])[],
  current: string | undefined,
  /** null: no "any" option (a choice is required). */
  anyLabel: string | null = 'Any',
): Safe {
  const id = `f-${name}`
  return html`<div class="field"><label for="${id}">${label}</label><select id="${id}" name="${name}">
    ${anyLabel === null ? '' : html`<option value="">${anyLabel}</option>`}
    ${options.map((o) => {
      const [value, text] = typeof o === 'string' ? [o, o] : o
      return html`<option value="${value}"${value === current ? html` selected` : ''}>${text}</option>`
    })}
  </select></div>`
}

export function input(name: string, label: string, value: string | undefined, extra: Safe | string = ''): Safe {
  const id = `f-${name}`
  return html`<div class="field"><label for="${id}">${label}</label><input type="text" id="${id}" name="${name}"
    value="${value ?? ''}" ${extra}></div>`
}
