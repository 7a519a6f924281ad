// Sign-in: one field for an admin or auditor token. The token is exchanged for a session cookie and never stored.
import { html, type Safe } from '../html.js'
import { notice, page } from '../layout.js'

export function loginPage(o: { next?: string; error?: string; signedOut?: boolean }): Safe {
  const body = html`<div class="login">
    <div class="panel">
      <h1>Sign in</h1>
      ${o.error ? notice('error', o.error) : o.signedOut ? notice('info', 'You are signed out.') : ''}
      <form method="post" action="/login" class="stack">
        <div class="field">
          <label for="token">Admin or auditor token</label>
          <input type="password" id="token" name="token" autocomplete="current-password" required
            spellcheck="false" autofocus aria-describedby="token-help">
        </div>
        <p id="token-help" class="muted small">Create one with <code>interdictctl token create --role auditor</code>.
          The session lasts 12 hours and ends when the token is revoked.</p>
        ${o.next ? html`<input type="hidden" name="next" value="${o.next}">` : ''}
        <button type="submit">Sign in</button>
      </form>
    </div>
  </div>`
  return page({ title: 'Sign in', body })
}
