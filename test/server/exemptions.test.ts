// Exemptions API: a grant re-issues the class bundle (signed, new version) carrying the exemption in the policy
// language's form; the agent's matcher then leaves the app alone on that device only; expiry stops it by itself; revoke
// takes it out again; auditors cannot change anything; every change is audited. Plus interdictctl exemption.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ProcessRow } from '../../agent/collectors/types.js'
import { compileMatcher } from '../../policies/match.js'
import type { BundlePayload } from '../../policies/schema.js'
import { verifyBundle } from '../../policies/sign.js'
import {
  ADMIN,
  backends,
  call,
  createAuditor,
  enrollDevices,
  finding,
  makeDatabase,
  POLICY_YAML,
  report,
  startServer,
  type TestServer,
} from './helpers.js'
import { runCtl } from './process.js'

const row: ProcessRow = {
  kind: 'process',
  pid: 4242,
  ppid: 1,
  name: 'chatapp-desktop',
  exe: '/usr/bin/chatapp-desktop',
}

const until = async <T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.each(backends)('exemptions on %s', (backend) => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let srv: TestServer
  let auditor: string
  let devices: Awaited<ReturnType<typeof enrollDevices>>['devices']

  const bundle = async (token: string) => {
    const r = await call(srv.url, 'GET', '/api/v1/policy', { token })
    expect(r.status).toBe(200)
    return verifyBundle(r.body, devices[0]!.policyKey, { class: 'military' })
  }
  const matcherFor = (b: BundlePayload, deviceId: string, now?: Date) =>
    compileMatcher(b.apps, 'linux', { deviceId, exemptions: b.exemptions, now })

  beforeAll(async () => {
    db = await makeDatabase(backend)
    srv = await startServer(db)
    auditor = (await createAuditor(srv.url)).token
    devices = (await enrollDevices(srv.url, 'military', 2, 'exm')).devices
    const push = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [POLICY_YAML] },
    })
    expect(push.status).toBe(201)
  })
  afterAll(async () => {
    await srv?.close()
    await db?.drop()
  })

  it('grants a device exemption: new signed bundle version, the matcher leaves that device alone', async () => {
    const [a, b] = devices
    const before = await bundle(a!.deviceToken)
    expect(matcherFor(before, a!.deviceId).match(row)[0]).toMatchObject({
      appId: 'chatapp',
      actions: expect.arrayContaining(['kill']),
    })

    const g = await call(srv.url, 'POST', '/api/v1/admin/exemptions', {
      token: ADMIN,
      body: { app: 'chatapp', device: a!.deviceId, reason: 'field test of a secure fork', expiresIn: '2h' },
    })
    expect(g.status).toBe(201)
    expect(g.body).toMatchObject({ app: 'chatapp', device: a!.deviceId, class: null, status: 'active' })
    expect(g.body.approvedBy).toContain('INTERDICT_ADMIN_TOKEN')
    expect(g.body.bundles).toEqual([{ class: 'military', version: before.version + 1 }])

    const after = await bundle(a!.deviceToken)
    expect(after.version).toBe(before.version + 1)
    expect(after.exemptions).toContainEqual({
      device: a!.deviceId,
      apps: ['chatapp'],
      reason: 'field test of a secure fork',
      approvedBy: g.body.approvedBy,
      expiresAt: g.body.expiresAt,
    })
    const mine = matcherFor(after, a!.deviceId).match(row)
    expect(mine).toHaveLength(1)
    expect(mine[0]!.actions).toEqual(['report'])
    expect(mine[0]!.exempted).toContain('field test')
    // Same bundle, another device of the class: still enforced.
    const other = matcherFor(after, b!.deviceId).match(row)
    expect(other[0]!.actions).toContain('kill')
    expect(other[0]!.exempted).toBeUndefined()

    // What the agent reports for an exempted finding does not make the device noncompliant.
    const f = { ...finding('x1'), evidence: { pid: 4242, exempted: mine[0]!.exempted! } }
    const rep = await call(srv.url, 'POST', '/api/v1/reports', {
      token: a!.deviceToken,
      body: report({
        bundleVersion: after.version,
        findings: [f],
        actions: [{ finding: 'x1', action: 'report', result: 'success' }],
      }),
    })
    expect(rep.status).toBe(202)
    const dev = await call(srv.url, 'GET', `/api/v1/admin/devices/${a!.deviceId}`, { token: auditor })
    expect(dev.body).toMatchObject({ status: 'compliant', openFindings: 0 })
    const ex = await call(srv.url, 'GET', `/api/v1/admin/findings?device=${a!.deviceId}&status=exempted`, {
      token: auditor,
    })
    expect(ex.body.findings).toHaveLength(1)
  })

  it('an expired exemption stops applying by itself: in the matcher at once, and the bundle is re-issued', async () => {
    const [, b] = devices
    const expiresAt = new Date(Date.now() + 1500).toISOString()
    const g = await call(srv.url, 'POST', '/api/v1/admin/exemptions', {
      token: ADMIN,
      body: { app: 'chatapp', class: 'military', reason: 'exercise window', expiresAt },
    })
    expect(g.status).toBe(201)
    const granted = await bundle(b!.deviceToken)
    expect(granted.exemptions).toContainEqual(expect.objectContaining({ class: 'military', apps: ['chatapp'] }))
    // Compiled while active; the agent keeps this matcher until its next bundle.
    const m = matcherFor(granted, b!.deviceId)
    expect(m.match(row)[0]!.actions).toEqual(['report'])
    expect(matcherFor(granted, b!.deviceId, new Date(Date.parse(expiresAt) + 1)).match(row)[0]!.actions).toContain(
      'kill',
    )
    const lapsed = await until(async () => {
      const cur = await bundle(b!.deviceToken)
      return cur.version > granted.version ? cur : undefined
    })
    expect(lapsed.exemptions.some((e) => e.class === 'military')).toBe(false)
    expect(m.match(row)[0]!.actions).toContain('kill')
    const list = await call(srv.url, 'GET', '/api/v1/admin/exemptions?status=expired', { token: auditor })
    expect(list.body.exemptions.map((e: { id: string }) => e.id)).toContain(g.body.id)
    const active = await call(srv.url, 'GET', '/api/v1/admin/exemptions?status=active', { token: auditor })
    expect(active.body.exemptions.map((e: { id: string }) => e.id)).not.toContain(g.body.id)
  })

  it('revokes: the bundle is re-issued without it; a second revoke is a conflict', async () => {
    const [a] = devices
    const list = await call(srv.url, 'GET', `/api/v1/admin/exemptions?status=active&device=${a!.deviceId}`, {
      token: ADMIN,
    })
    const id = list.body.exemptions[0].id
    const before = await bundle(a!.deviceToken)
    const r = await call(srv.url, 'POST', `/api/v1/admin/exemptions/${id}/revoke`, { token: ADMIN })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({
      id,
      status: 'revoked',
      bundles: [{ class: 'military', version: before.version + 1 }],
    })
    const after = await bundle(a!.deviceToken)
    expect(after.exemptions.some((e) => e.device === a!.deviceId)).toBe(false)
    expect(matcherFor(after, a!.deviceId).match(row)[0]!.actions).toContain('kill')
    expect((await call(srv.url, 'POST', `/api/v1/admin/exemptions/${id}/revoke`, { token: ADMIN })).status).toBe(409)
    expect((await call(srv.url, 'POST', '/api/v1/admin/exemptions/exm_nope/revoke', { token: ADMIN })).status).toBe(404)
    const revoked = await call(srv.url, 'GET', '/api/v1/admin/exemptions?status=revoked', { token: auditor })
    expect(revoked.body.exemptions.map((e: { id: string }) => e.id)).toContain(id)
  })

  it('denies auditors and devices, audits every grant and revoke, rejects bad input', async () => {
    const body = { app: 'chatapp', class: 'military', reason: 'r', expiresIn: '1h' }
    const denied = await call(srv.url, 'POST', '/api/v1/admin/exemptions', { token: auditor, body })
    expect(denied.status).toBe(403)
    expect(
      (await call(srv.url, 'POST', '/api/v1/admin/exemptions', { token: devices[0]!.deviceToken, body })).status,
    ).toBe(403)
    expect((await call(srv.url, 'POST', '/api/v1/admin/exemptions', { body })).status).toBe(401)
    const any = await call(srv.url, 'GET', '/api/v1/admin/exemptions', { token: auditor })
    expect(
      (await call(srv.url, 'POST', `/api/v1/admin/exemptions/${any.body.exemptions[0].id}/revoke`, { token: auditor }))
        .status,
    ).toBe(403)

    const grants = await call(srv.url, 'GET', '/api/v1/admin/audit?action=exemption.grant', { token: auditor })
    expect(grants.body.entries).toHaveLength(2)
    expect(grants.body.entries[0]).toMatchObject({ role: 'admin', target: expect.stringMatching(/^exemption:/) })
    expect(grants.body.entries[0].details).toMatchObject({ app: 'chatapp', bundles: [{ class: 'military' }] })
    const revokes = await call(srv.url, 'GET', '/api/v1/admin/audit?action=exemption.revoke', { token: auditor })
    expect(revokes.body.entries).toHaveLength(1)

    const bad: [unknown, number, RegExp][] = [
      [{ ...body, app: 'nosuchapp' }, 404, /nosuchapp/],
      [{ ...body, device: devices[0]!.deviceId }, 400, /exactly one of device/],
      [{ app: 'chatapp', device: 'dev_missing', reason: 'r', expiresIn: '1h' }, 404, /dev_missing/],
      [{ ...body, expiresIn: undefined, expiresAt: '2001-01-01T00:00:00Z' }, 400, /future/],
      [{ ...body, expiresIn: 'forever' }, 400, /expiresIn/],
      [{ ...body, expiresAt: new Date(Date.now() + 60_000).toISOString() }, 400, /exactly one of expiresAt/],
      [{ ...body, class: 'ghost' }, 404, /ghost/],
    ]
    for (const [b, status, msg] of bad) {
      const r = await call(srv.url, 'POST', '/api/v1/admin/exemptions', { token: ADMIN, body: b })
      expect(r.status, JSON.stringify(b)).toBe(status)
      expect(r.body.message).toMatch(msg)
    }
  })

  it.runIf(backend === 'sqlite')(
    'interdictctl exemption grant | list | revoke, with --json and exit codes',
    async () => {
      const env = { INTERDICT_SERVER: srv.url, INTERDICT_TOKEN: ADMIN }
      const dev = devices[1]!.deviceId
      const g = await runCtl(
        ['exemption', 'grant', '--app', 'chatapp', '--device', dev, '--reason', 'pilot', '--expires', '7d', '--json'],
        env,
      )
      expect(g.code, g.stderr).toBe(0)
      const granted = JSON.parse(g.stdout)
      expect(granted).toMatchObject({ app: 'chatapp', device: dev, status: 'active' })
      const human = await runCtl(['exemption', 'list', '--status', 'active'], env)
      expect(human.code).toBe(0)
      expect(human.stdout).toContain(granted.id)
      expect(human.stdout).toMatch(/^ID\s+APP\s+DEVICE/)
      const l = await runCtl(['exemption', 'list', '--json', '--device', dev], env)
      expect(JSON.parse(l.stdout).exemptions[0].id).toBe(granted.id)
      const r = await runCtl(['exemption', 'revoke', granted.id], env)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`revoked exemption ${granted.id}`)
      expect((await runCtl(['exemption', 'revoke', granted.id], env)).code).toBe(1)
      const both = await runCtl(['exemption', 'grant', '--app', 'chatapp', '--reason', 'x', '--expires', '1h'], env)
      expect(both.code).toBe(2)
      const aud = await runCtl(
        ['exemption', 'grant', '--app', 'chatapp', '--class', 'military', '--reason', 'x', '--expires', '1h'],
        { ...env, INTERDICT_TOKEN: auditor },
      )
      expect(aud.code).toBe(3)
    },
  )
})
