// Dashboard without a browser: HTML escaping, session cookies (tampering, expiry, shared by instances on one
// PostgreSQL), the multipart parser, policy diffs, and the hourly compliance snapshot on every backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { takeSnapshot } from '../../server/dashboard/data.js'
import { diffBundles } from '../../server/dashboard/diff.js'
import { parseMultipart } from '../../server/dashboard/forms.js'
import { html, raw } from '../../server/dashboard/html.js'
import { Sessions } from '../../server/dashboard/session.js'
import type { BundleApp } from '../../policies/schema.js'
import {
  ADMIN,
  backends,
  call,
  createAuditor,
  enrollDevices,
  makeDatabase,
  startServer,
  type TestServer,
} from '../server/helpers.js'

describe('dashboard building blocks', () => {
  it('html`` escapes every interpolation unless it is Safe', () => {
    const evil = `<script>alert("x")</script>' onmouseover='x`
    const out = html`<td title="${evil}">${evil}${[evil, html`<b>${evil}</b>`]}${raw('<i>ok</i>')}${null}${false}</td>`
      .value
    expect(out).not.toContain('<script>')
    expect(out).not.toMatch(/'\s*onmouseover/)
    expect(out).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x')
    expect(out).toContain('<b>&lt;script&gt;')
    expect(out).toContain('<i>ok</i>')
  })

  it('session cookies reject tampering, another key and expiry; CSRF tokens are bound to the session', () => {
    const key = Buffer.alloc(32, 7)
    const s = new Sessions(key, true)
    const value = s.issue('tok_abc', 'auditor')
    const session = s.verify(value)!
    expect(session).toMatchObject({ tokenId: 'tok_abc', role: 'auditor' })
    expect(s.verify(value.replace('.auditor.', '.admin.'))).toBeUndefined()
    expect(s.verify(`${value}x`)).toBeUndefined()
    expect(new Sessions(Buffer.alloc(32, 8), true).verify(value)).toBeUndefined()
    expect(s.verify(value, session.expiresAt + 1)).toBeUndefined()
    expect(s.checkCsrf(session, s.csrf(session))).toBe(true)
    expect(s.checkCsrf(s.verify(s.issue('tok_abc', 'auditor'))!, s.csrf(session))).toBe(false)
    expect(s.setCookie(value)).toMatch(/^__Host-interdict_session=.*; Path=\/; .*HttpOnly; SameSite=Strict; Secure$/)
    expect(new Sessions(key, false).setCookie(value)).not.toContain('Secure')
  })

  it('parses multipart form posts with fields and files', () => {
    const b = '----x1'
    const body = Buffer.from(
      [
        `--${b}`,
        'Content-Disposition: form-data; name="_csrf"',
        '',
        'tok',
        `--${b}`,
        'Content-Disposition: form-data; name="files"; filename="p.yaml"',
        'Content-Type: application/x-yaml',
        '',
        'id: a\r\ntitle: b',
        `--${b}`,
        'Content-Disposition: form-data; name="files"; filename=""',
        'Content-Type: application/octet-stream',
        '',
        '',
        `--${b}--`,
        '',
      ].join('\r\n'),
    )
    const f = parseMultipart(body, `multipart/form-data; boundary=${b}`)
    expect(f.get('_csrf')).toBe('tok')
    expect(f.files).toHaveLength(1)
    expect(f.files[0]).toMatchObject({ field: 'files', filename: 'p.yaml' })
    expect(f.files[0]!.data.toString()).toBe('id: a\r\ntitle: b')
  })

  it('diffs bundles into rules added, removed and changed', () => {
    const app = (id: string, over: Partial<BundleApp> = {}): BundleApp => ({
      policy: 'p',
      id,
      name: id.toUpperCase(),
      match: { processNames: [id] },
      actions: ['report'],
      ...over,
    })
    const d = diffBundles(
      { apps: [app('a'), app('b')], exemptions: [] },
      {
        apps: [app('a', { actions: ['report', 'kill'], match: { processNames: ['a', 'a2'] } }), app('c')],
        exemptions: [],
      },
    )
    expect(d.added.map((x) => x.key)).toEqual(['p/c'])
    expect(d.removed.map((x) => x.key)).toEqual(['p/b'])
    expect(d.changed).toEqual([
      {
        key: 'p/a',
        name: 'A',
        actions: { from: ['report'], to: ['report', 'kill'] },
        match: [{ field: 'processNames', added: ['a2'], removed: [] }],
      },
    ])
    expect(diffBundles({ apps: [app('a')], exemptions: [] }, { apps: [app('a')], exemptions: [] }).same).toBe(true)
  })
})

async function signIn(url: string, token: string) {
  const r = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
    body: new URLSearchParams({ token }).toString(),
  })
  return { status: r.status, cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]! }
}

describe.each(backends)('dashboard server on %s', (backend) => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let a: TestServer
  let b: TestServer | undefined

  beforeAll(async () => {
    db = await makeDatabase(backend)
    a = await startServer(db)
    // Two stateless instances share one PostgreSQL; SQLite is one instance.
    if (backend === 'postgres') b = await startServer(db)
    await enrollDevices(a.url, 'military', 3)
  })
  afterAll(async () => {
    await b?.close()
    await a?.close()
    await db?.drop()
  })

  it('serves every page to a signed-in admin, with a strict CSP', async () => {
    const { status, cookie } = await signIn(a.url, ADMIN)
    expect(status).toBe(303)
    for (const path of ['/', '/devices', '/findings', '/policies', '/exemptions', '/audit', '/findings?format=json']) {
      const r = await fetch(`${a.url}${path}`, { headers: { cookie } })
      expect(r.status, path).toBe(200)
      expect(r.headers.get('content-security-policy')).toContain("script-src 'self'")
    }
    const r = await fetch(`${a.url}/devices?status=bogus`, { headers: { cookie } })
    expect(r.status).toBe(400)
    expect(await r.text()).toContain('unknown status')
  })

  it('takes one compliance snapshot per class per hour, however many instances try', async () => {
    const ctx = a.ctx
    await ctx.storage.db.deleteFrom('compliance_snapshots').execute()
    const hour = Date.UTC(2030, 0, 1, 10)
    const tries = [takeSnapshot(ctx, hour), takeSnapshot(ctx, hour + 60_000)]
    if (b) tries.push(takeSnapshot(b.ctx, hour + 120_000))
    await Promise.all(tries)
    const rows = await ctx.storage.db.selectFrom('compliance_snapshots').selectAll().execute()
    expect(rows.map((r) => [r.class, Number(r.hour), Number(r.total)])).toEqual([['military', hour, 3]])
    expect(await takeSnapshot(ctx, hour + 30 * 60_000)).toBe(false)
  })

  it.skipIf(backend !== 'postgres')(
    'a session from one instance works on another; revoking the token ends it on both',
    async () => {
      const aud = await createAuditor(a.url)
      const { cookie } = await signIn(a.url, aud.token)
      expect((await fetch(`${b!.url}/devices`, { headers: { cookie } })).status).toBe(200)
      expect((await call(b!.url, 'POST', `/api/v1/admin/tokens/${aud.id}/revoke`, { token: ADMIN })).status).toBe(200)
      // The revoke is announced to every instance (auth-flush), so instance A drops its cached answer too.
      let status = 0
      for (let i = 0; i < 50 && status !== 303; i++) {
        status = (await fetch(`${a.url}/devices`, { headers: { cookie }, redirect: 'manual' })).status
        if (status !== 303) await new Promise((r) => setTimeout(r, 100))
      }
      expect(status).toBe(303)
    },
  )
})
