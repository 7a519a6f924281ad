// The web dashboard in a real browser: playwright-core driving Debian's chromium against a real server (SQLite) seeded
// through the real API. Screenshots of every page go to test-output/screenshots/.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ADMIN,
  call,
  enrollDevices,
  finding,
  makeDatabase,
  POLICY_2,
  POLICY_YAML,
  report,
  startServer,
  type TestServer,
} from '../server/helpers.js'

const CHROMIUM = '/usr/bin/chromium'

/** Click a submit button and wait for the page it leads to. */
async function submit(p: Page, button: Locator) {
  await Promise.all([p.waitForNavigation(), button.click()])
}
const SHOTS = join(import.meta.dirname, '..', '..', 'test-output', 'screenshots')
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) console.warn(`dashboard browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`)

const NEW_POLICY = `
id: ban-filesync
title: File sync client is banned
apps:
  - id: filesync
    name: FileSync
    match:
      processNames: [filesync-daemon]
assignments:
  military: { actions: [report, kill] }
`

describe.skipIf(!haveChromium)('web dashboard (chromium)', { timeout: 60_000 }, () => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let srv: TestServer
  let browser: Browser
  let admin: BrowserContext
  let page: Page
  let auditorToken: string
  let deviceToken: string
  let noisyDevice: string

  const api = (method: string, path: string, body?: unknown, token = ADMIN) =>
    call(srv.url, method, path, { token, body })
  const shot = (p: Page, name: string) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })

  async function signIn(ctx: BrowserContext, token: string) {
    const p = await ctx.newPage()
    await p.goto(`${srv.url}/login`)
    await p.getByLabel('Admin or auditor token').fill(token)
    await submit(p, p.getByRole('button', { name: 'Sign in' }))
    return p
  }

  /** The page's CSRF token (every signed-in page has one in the sign-out form). */
  const csrfOf = (p: Page) => p.locator('form[action="/logout"] input[name=_csrf]').getAttribute('value')

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    db = await makeDatabase('sqlite')
    srv = await startServer(db)
    // Seed through the real API: two classes, devices, policy, reports with findings and actions.
    const mil = await enrollDevices(srv.url, 'military', 5, 'mil')
    const std = await enrollDevices(srv.url, 'standard', 4, 'std')
    expect((await api('POST', '/api/v1/admin/policies', { policies: [POLICY_YAML, POLICY_2] })).status).toBe(201)
    const send = (token: string, over: Record<string, unknown>) =>
      call(srv.url, 'POST', '/api/v1/reports', { token, body: report(over) })
    const [m0, m1, m2, m3] = mil.devices
    noisyDevice = m0!.deviceId
    deviceToken = m0!.deviceToken
    // m0: chatapp open (report only) -> noncompliant; m1: chatapp killed -> remediated; m2: clean -> compliant.
    expect(
      (await send(m0!.deviceToken, { bundleVersion: 2, findings: [finding('f1'), finding('f2', 'otherapp')] })).status,
    ).toBe(202)
    expect(
      (
        await send(m1!.deviceToken, {
          bundleVersion: 2,
          findings: [finding('f1')],
          actions: [{ finding: 'f1', action: 'kill', result: 'success' }],
        })
      ).status,
    ).toBe(202)
    expect((await send(m2!.deviceToken, { bundleVersion: 2 })).status).toBe(202)
    expect((await send(std.devices[0]!.deviceToken, { bundleVersion: 2, findings: [finding('s1')] })).status).toBe(202)
    expect((await send(std.devices[1]!.deviceToken, { bundleVersion: 1 })).status).toBe(202)
    await call(srv.url, 'POST', '/api/v1/heartbeat', {
      token: m0!.deviceToken,
      body: { bundleVersion: 2, agentVersion: '0.1.0', health: { uptimeSec: 5120, queueDepth: 0 } },
    })
    await srv.ctx.ingestor.drain()
    // Time passing is the one thing the API cannot seed: m3 went silent two hours ago, and the chart gets a history.
    const hour = 3_600_000
    await srv.ctx.storage.db
      .updateTable('devices')
      .set({ last_seen: Date.now() - 2 * hour })
      .where('id', '=', m3!.deviceId)
      .execute()
    const now = Math.floor(Date.now() / hour) * hour
    await srv.ctx.storage.db.deleteFrom('compliance_snapshots').execute()
    await srv.ctx.storage.db
      .insertInto('compliance_snapshots')
      .values(
        Array.from({ length: 24 }, (_, i) => i).flatMap((i) => [
          ...['military', 'standard'].map((cls, k) => {
            const total = cls === 'military' ? 5 : 4
            const ok = Math.min(total, Math.round(total * (0.35 + 0.025 * i + 0.1 * k)))
            return {
              class: cls,
              hour: now - (24 - i) * hour,
              taken_at: now - (24 - i) * hour,
              total,
              compliant: ok,
              noncompliant: total - ok,
              remediated: 0,
              unknown: 0,
              pending: 0,
            }
          }),
        ]),
      )
      .execute()
    auditorToken = (await api('POST', '/api/v1/admin/tokens', { role: 'auditor', label: 'audit team' })).body.token
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
    admin = await browser.newContext({ viewport: { width: 1366, height: 900 } })
  })

  afterAll(async () => {
    await browser?.close()
    await srv?.close()
    await db?.drop()
  })

  it('sign-in rejects a bad token and a device token, accepts an admin token, and sets a safe cookie', async () => {
    const p = await admin.newPage()
    const first = await p.goto(`${srv.url}/devices`)
    expect(new URL(first!.url()).pathname).toBe('/login')
    await shot(p, '01-login')
    await p.getByLabel('Admin or auditor token').fill('idt_adm_not-a-real-token-at-all')
    await submit(p, p.getByRole('button', { name: 'Sign in' }))
    expect(await p.getByRole('alert').textContent()).toMatch(/unknown or revoked/)
    await p.getByLabel('Admin or auditor token').fill(deviceToken)
    await submit(p, p.getByRole('button', { name: 'Sign in' }))
    expect(await p.getByRole('alert').textContent()).toMatch(/Device tokens cannot sign in/)
    expect(await admin.cookies()).toEqual([])

    await p.getByLabel('Admin or auditor token').fill(ADMIN)
    await submit(p, p.getByRole('button', { name: 'Sign in' }))
    await p.waitForURL(`${srv.url}/devices`)
    const [cookie] = await admin.cookies()
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
    expect(cookie!.value).not.toContain(ADMIN)
    expect(cookie!.expires).toBeGreaterThan(Date.now() / 1000)
    page = p
  })

  it('overview numbers equal GET /api/v1/admin/compliance', async () => {
    await page.goto(`${srv.url}/`)
    const api1 = (await api('GET', '/api/v1/admin/compliance')).body
    for (const c of api1.classes as Record<string, number | string>[]) {
      for (const s of ['compliant', 'noncompliant', 'remediated', 'unknown', 'pending', 'total']) {
        const cell = page.locator(`td[data-class="${c.class}"][data-status="${s}"]`)
        expect(Number(await cell.textContent()), `${c.class}/${s}`).toBe(c[s])
      }
    }
    for (const s of ['compliant', 'noncompliant', 'remediated', 'unknown', 'pending'])
      expect(Number(await page.locator(`[data-total="${s}"]`).textContent())).toBe(api1.totals[s])
    expect(api1.totals).toMatchObject({ total: 9, noncompliant: 2, remediated: 1, unknown: 1 })
    // The chart, the most-found apps and the silent device are on the page.
    expect(await page.locator('svg.plot circle').count()).toBeGreaterThan(10)
    expect(await page.getByRole('table', { name: /Most-found banned apps/ }).textContent()).toContain('ChatApp')
    expect(await page.getByRole('table', { name: /Devices gone silent/ }).textContent()).toContain('host-3')
    await shot(page, '02-overview')
  })

  it('filters devices by class, status and app found', async () => {
    await page.goto(`${srv.url}/devices`)
    await page.getByLabel('Class').selectOption('military')
    await page.getByLabel('Status').selectOption('noncompliant')
    await submit(page, page.getByRole('button', { name: 'Apply' }))
    await page.waitForURL(/status=noncompliant/)
    const want = (await api('GET', '/api/v1/admin/devices?class=military&status=noncompliant')).body.devices
    const rows = page.locator('#devices tbody tr[data-device]')
    expect(await rows.count()).toBe(want.length)
    expect(await rows.first().getAttribute('data-device')).toBe(noisyDevice)

    await page.goto(`${srv.url}/devices?app=otherapp`)
    expect(await page.locator('#devices tbody tr[data-device]').count()).toBe(1)
    await page.goto(`${srv.url}/devices`)
    expect(await page.locator('#devices tbody tr[data-device]').count()).toBe(9)
    await shot(page, '03-devices')

    await page.locator(`tr[data-device="${noisyDevice}"] a`).first().click()
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('host-0')
    expect(await page.locator('#findings tbody tr').count()).toBe(2)
    expect(await page.getByText('uptimeSec').isVisible()).toBe(true)
    await shot(page, '04-device')
  })

  it('exports the findings view as CSV with the same rows as the API', async () => {
    await page.goto(`${srv.url}/findings`)
    await page.getByLabel('App', { exact: true }).fill('chatapp')
    await submit(page, page.getByRole('button', { name: 'Apply' }))
    await page.waitForURL(/app=chatapp/)
    const want = (await api('GET', '/api/v1/admin/findings?app=chatapp')).body.findings
    expect(await page.locator('#findings tbody tr').count()).toBe(want.length)
    await shot(page, '05-findings')
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'CSV' }).click(),
    ])
    expect(download.suggestedFilename()).toBe('findings.csv')
    const csv = readFileSync((await download.path())!, 'utf8')
      .trim()
      .split('\r\n')
    expect(csv[0]).toBe(
      'scannedAt,deviceId,hostname,class,appId,appName,policy,signal,matched,subject,status,actions,reportId',
    )
    expect(csv.length - 1).toBe(want.length)
    expect(csv.slice(1).every((l) => l.includes(',chatapp,'))).toBe(true)
    // Same bytes as the admin API's export for the same filter.
    const apiCsv = await call(srv.url, 'GET', '/api/v1/admin/findings?app=chatapp&since=7d&format=csv', {
      token: ADMIN,
    })
    expect(csv.join('\r\n')).toBe(apiCsv.text.trim())
  })

  it('grants and revokes an exemption', async () => {
    await page.goto(`${srv.url}/exemptions`)
    await page.getByLabel('One device').check()
    await page.getByLabel('Device id').fill(noisyDevice)
    await page.getByLabel('App', { exact: true }).selectOption('chatapp')
    await page.getByLabel('Reason').fill('Vendor support channel, ticket SEC-1234')
    await page.getByLabel('Expires in').selectOption('7d')
    await submit(page, page.getByRole('button', { name: 'Grant exemption' }))
    expect(await page.getByRole('status').textContent()).toContain('Exemption granted')
    let list = (await api('GET', '/api/v1/admin/exemptions')).body.exemptions
    expect(list).toHaveLength(1)
    expect(list[0]).toMatchObject({ app: 'chatapp', device: noisyDevice, status: 'active' })
    expect(await page.locator(`tr[data-exemption="${list[0].id}"]`).textContent()).toContain('SEC-1234')
    await shot(page, '06-exemptions')

    page.once('dialog', (d) => d.accept())
    await submit(page, page.locator(`tr[data-exemption="${list[0].id}"]`).getByRole('button', { name: /Revoke/ }))
    expect(await page.getByRole('status').textContent()).toContain('Exemption revoked')
    list = (await api('GET', '/api/v1/admin/exemptions')).body.exemptions
    expect(list[0]).toMatchObject({ status: 'revoked' })
    const audit = (await api('GET', '/api/v1/admin/audit')).body.entries.map((e: { action: string }) => e.action)
    expect(audit).toEqual(expect.arrayContaining(['exemption.grant', 'exemption.revoke', 'dashboard.sign-in']))
  })

  it('dry-runs and pushes a policy, and shows the diff in the history', async () => {
    await page.goto(`${srv.url}/policies`)
    const before = (await api('GET', '/api/v1/admin/policies')).body
    await page.getByLabel('Policy YAML or JSON').fill(NEW_POLICY)
    await submit(page, page.getByRole('button', { name: 'Dry run' }))
    expect(await page.locator('#push-result').textContent()).toContain('Dry run: this push would issue 1 new bundle')
    expect((await api('GET', '/api/v1/admin/policies')).body.policySetVersion).toBe(before.policySetVersion)

    page.once('dialog', (d) => d.accept())
    await submit(page, page.getByRole('button', { name: 'Push', exact: true }))
    expect(await page.locator('#push-result').textContent()).toContain(
      `Pushed policy set v${before.policySetVersion + 1}`,
    )
    const after = (await api('GET', '/api/v1/admin/policies')).body
    const version = (r: { classes: { class: string; version: number }[] }) =>
      r.classes.find((c) => c.class === 'military')!.version
    expect(version(after)).toBe(version(before) + 1)
    await page.goto(`${srv.url}/policies`)
    const row = page.locator('#history tbody tr').first()
    expect(await row.textContent()).toContain('military')
    expect(await row.textContent()).toContain('FileSync')
    await shot(page, '07-policies')

    // Invalid YAML: the page explains and nothing is stored.
    await page.getByLabel('Policy YAML or JSON').fill('id: broken\napps: [')
    await submit(page, page.getByRole('button', { name: 'Dry run' }))
    expect(await page.getByRole('alert').textContent()).toContain('The policy was not pushed')
  })

  it('shows the audit log', async () => {
    await page.goto(`${srv.url}/audit`)
    expect(await page.locator('#audit').textContent()).toContain('policy.push')
    await shot(page, '08-audit')
  })

  it('an auditor sees no push form and a forged push is refused with 403', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } })
    const p = await signIn(ctx, auditorToken)
    await p.waitForURL(`${srv.url}/`)
    await p.goto(`${srv.url}/policies`)
    expect(await p.locator('#push-form').count()).toBe(0)
    expect(await p.getByText('Auditors have read-only access').isVisible()).toBe(true)
    await shot(p, '09-auditor-policies')
    await p.goto(`${srv.url}/exemptions`)
    expect(await p.locator('#grant-form').count()).toBe(0)
    // A valid session and CSRF token, same origin: still 403, because the role is checked server-side.
    const csrf = await csrfOf(p)
    const forged = await p.request.post(`${srv.url}/policies`, {
      headers: { origin: srv.url },
      multipart: { _csrf: csrf!, yaml: NEW_POLICY, mode: 'push' },
    })
    expect(forged.status()).toBe(403)
    const grant = await p.request.post(`${srv.url}/exemptions`, {
      headers: { origin: srv.url },
      form: { _csrf: csrf!, scope: 'class', class: 'standard', app: 'chatapp', reason: 'x', expiresIn: '1h' },
    })
    expect(grant.status()).toBe(403)
    expect((await api('GET', '/api/v1/admin/exemptions')).body.exemptions).toHaveLength(1)
    await ctx.close()
  })

  it('refuses state changes without the CSRF token or from another origin', async () => {
    const csrf = await csrfOf(page)
    const form = { scope: 'class', class: 'standard', app: 'chatapp', reason: 'csrf test', expiresIn: '1h' }
    const post = (data: Record<string, string>, headers: Record<string, string> = { origin: srv.url }) =>
      page.request.post(`${srv.url}/exemptions`, { form: data, headers, maxRedirects: 0 })
    expect((await post(form)).status()).toBe(403)
    expect((await post({ ...form, _csrf: 'A'.repeat(43) })).status()).toBe(403)
    expect((await post({ ...form, _csrf: csrf! }, { origin: 'http://evil.example' })).status()).toBe(403)
    expect((await api('GET', '/api/v1/admin/exemptions')).body.exemptions).toHaveLength(1)
    // The same form with the token from the page goes through.
    expect((await post({ ...form, _csrf: csrf! })).status()).toBe(303)
    expect((await api('GET', '/api/v1/admin/exemptions')).body.exemptions).toHaveLength(2)
  })

  it('revoking the token ends its session; sign-out clears the cookie', async () => {
    const extra = (await api('POST', '/api/v1/admin/tokens', { role: 'auditor', label: 'short-lived' })).body
    const ctx = await browser.newContext()
    const p = await signIn(ctx, extra.token)
    await p.waitForURL(`${srv.url}/`)
    expect((await api('POST', `/api/v1/admin/tokens/${extra.id}/revoke`)).status).toBe(200)
    await p.goto(`${srv.url}/devices`)
    expect(new URL(p.url()).pathname).toBe('/login')
    await ctx.close()

    await submit(page, page.getByRole('button', { name: 'Sign out' }))
    await page.waitForURL(/\/login/)
    expect(await admin.cookies()).toEqual([])
    await page.goto(`${srv.url}/`)
    expect(new URL(page.url()).pathname).toBe('/login')
  })
})
