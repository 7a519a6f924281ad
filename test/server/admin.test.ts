// Admin API, the auth matrix (no token / device / auditor / admin against every route) and hostile input.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ADMIN,
  backends,
  call,
  type Res,
  enrollDevices,
  finding,
  makeDatabase,
  POLICY_YAML,
  report,
  startServer,
  type TestServer,
} from './helpers.js'

type Kind = 'none' | 'device' | 'auditor' | 'admin'
interface Route {
  method: string
  path: () => string
  body?: () => unknown
  /** who may use it */
  allowed: Kind[]
}

describe.each(backends)('admin API on %s', (backend) => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let srv: TestServer
  let auditor: string
  let devices: Awaited<ReturnType<typeof enrollDevices>>['devices']
  const count = async (table: 'reports' | 'findings' | 'devices' | 'audit' | 'policy_sets' | 'classes') =>
    Number(
      (
        await srv.ctx.storage.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )

  beforeAll(async () => {
    db = await makeDatabase(backend)
    srv = await startServer(db)
    const t = await call(srv.url, 'POST', '/api/v1/admin/tokens', {
      token: ADMIN,
      body: { role: 'auditor', label: 'qa' },
    })
    expect(t.status).toBe(201)
    auditor = t.body.token
    devices = (await enrollDevices(srv.url, 'standard', 30, 'matrix')).devices
    await call(srv.url, 'POST', '/api/v1/admin/policies', { token: ADMIN, body: { policies: [POLICY_YAML] } })
  })
  afterAll(async () => {
    await srv?.close()
    await db?.drop()
  })

  it('enforces the auth matrix on every route', async () => {
    let victim = 5
    const rnd = () => randomBytes(4).toString('hex')
    const routes: Route[] = [
      { method: 'GET', path: () => '/api/v1/policy', allowed: ['device'] },
      { method: 'POST', path: () => '/api/v1/reports', body: () => report(), allowed: ['device'] },
      {
        method: 'POST',
        path: () => '/api/v1/heartbeat',
        body: () => ({ bundleVersion: 1, agentVersion: '1', health: {} }),
        allowed: ['device'],
      },
      { method: 'GET', path: () => '/api/v1/admin/whoami', allowed: ['auditor', 'admin'] },
      { method: 'GET', path: () => '/api/v1/admin/classes', allowed: ['auditor', 'admin'] },
      { method: 'POST', path: () => '/api/v1/admin/classes', body: () => ({ name: `c-${rnd()}` }), allowed: ['admin'] },
      { method: 'GET', path: () => '/api/v1/admin/enroll-secrets', allowed: ['auditor', 'admin'] },
      {
        method: 'POST',
        path: () => '/api/v1/admin/enroll-secrets',
        body: () => ({ class: 'standard' }),
        allowed: ['admin'],
      },
      { method: 'GET', path: () => '/api/v1/admin/tokens', allowed: ['auditor', 'admin'] },
      { method: 'POST', path: () => '/api/v1/admin/tokens', body: () => ({ role: 'auditor' }), allowed: ['admin'] },
      { method: 'GET', path: () => '/api/v1/admin/policies', allowed: ['auditor', 'admin'] },
      { method: 'GET', path: () => '/api/v1/admin/policies/history', allowed: ['auditor', 'admin'] },
      {
        method: 'POST',
        path: () => '/api/v1/admin/policies',
        body: () => ({ policies: [POLICY_YAML], dryRun: true }),
        allowed: ['admin'],
      },
      { method: 'GET', path: () => '/api/v1/admin/devices', allowed: ['auditor', 'admin'] },
      { method: 'GET', path: () => `/api/v1/admin/devices/${devices[0]!.deviceId}`, allowed: ['auditor', 'admin'] },
      { method: 'POST', path: () => `/api/v1/admin/devices/${devices[victim++]!.deviceId}/revoke`, allowed: ['admin'] },
      { method: 'GET', path: () => '/api/v1/admin/compliance', allowed: ['auditor', 'admin'] },
      { method: 'GET', path: () => '/api/v1/admin/findings', allowed: ['auditor', 'admin'] },
      { method: 'GET', path: () => '/api/v1/admin/rollout', allowed: ['auditor', 'admin'] },
      { method: 'GET', path: () => '/api/v1/admin/audit', allowed: ['auditor', 'admin'] },
    ]
    const tokens: Record<Kind, string | undefined> = {
      none: undefined,
      device: devices[0]!.deviceToken,
      auditor,
      admin: ADMIN,
    }
    const failures: string[] = []
    for (const r of routes) {
      for (const kind of ['none', 'device', 'auditor', 'admin'] as Kind[]) {
        const res = await call(srv.url, r.method, r.path(), { token: tokens[kind], body: r.body?.() })
        const expected = r.allowed.includes(kind) ? 'ok' : kind === 'none' ? 401 : 403
        const ok = expected === 'ok' ? res.status >= 200 && res.status < 300 : res.status === expected
        if (!ok) failures.push(`${r.method} ${r.path()} as ${kind}: ${res.status} ${res.text.slice(0, 120)}`)
        if (res.status >= 400) {
          expect(res.body.error).toBeTypeOf('string')
          expect(res.body.message).toBeTypeOf('string')
        }
      }
    }
    expect(failures).toEqual([])
    // A garbage bearer token is the same as none.
    expect((await call(srv.url, 'GET', '/api/v1/admin/classes', { token: 'idt_adm_forged' })).status).toBe(401)
  })

  it('audits every admin write with the actor token id, and refuses auditor writes without auditing them', async () => {
    const who = await call(srv.url, 'GET', '/api/v1/admin/whoami', { token: ADMIN })
    const before = await count('audit')
    const denied = await call(srv.url, 'POST', '/api/v1/admin/classes', { token: auditor, body: { name: 'nope' } })
    expect(denied.status).toBe(403)
    expect(await count('audit')).toBe(before)
    await call(srv.url, 'POST', '/api/v1/admin/classes', { token: ADMIN, body: { name: 'audited' } })
    const log = await call(srv.url, 'GET', '/api/v1/admin/audit?action=class.create&limit=1', { token: auditor })
    expect(log.body.entries[0]).toMatchObject({
      actor: who.body.tokenId,
      role: 'admin',
      action: 'class.create',
      target: 'class:audited',
    })
    const csv = await call(srv.url, 'GET', '/api/v1/admin/audit?format=csv', { token: ADMIN })
    expect(csv.text.startsWith('seq,at,actor,role,action,target,details')).toBe(true)
  })

  it('rejects bad input with 4xx and a clear message, writing nothing', async () => {
    const dev = devices[1]!.deviceToken
    const reportsBefore = await count('reports')
    const findingsBefore = await count('findings')
    const cases: { name: string; res: () => Promise<Res>; status: number; message: RegExp }[] = [
      {
        name: 'malformed JSON',
        res: () => call(srv.url, 'POST', '/api/v1/reports', { token: dev, raw: '{"reportId": ' }),
        status: 400,
        message: /not valid JSON/,
      },
      {
        name: 'wrong type',
        res: () => call(srv.url, 'POST', '/api/v1/reports', { token: dev, body: report({ bundleVersion: '3' }) }),
        status: 400,
        message: /bundleVersion/,
      },
      {
        name: 'unknown field',
        res: () => call(srv.url, 'POST', '/api/v1/reports', { token: dev, body: { ...report(), evil: 1 } }),
        status: 400,
        message: /unknown field "evil"/,
      },
      {
        name: 'not a uuid',
        res: () => call(srv.url, 'POST', '/api/v1/reports', { token: dev, body: report({ reportId: "1' OR '1'='1" }) }),
        status: 400,
        message: /reportId/,
      },
      {
        name: 'action for a finding that is not there',
        res: () =>
          call(srv.url, 'POST', '/api/v1/reports', {
            token: dev,
            body: report({ findings: [finding('a')], actions: [{ finding: 'b', action: 'kill', result: 'success' }] }),
          }),
        status: 400,
        message: /finding "b"/,
      },
      {
        name: 'oversized body',
        res: () =>
          call(srv.url, 'POST', '/api/v1/reports', {
            token: dev,
            body: report({
              inventory: { big: 'x'.repeat(4000) },
              findings: Array.from({ length: 900 }, (_, i) => ({ ...finding(`f${i}`), subject: 'y'.repeat(1500) })),
            }),
          }),
        status: 413,
        message: /larger/,
      },
      {
        name: 'wrong content type',
        res: () =>
          call(srv.url, 'POST', '/api/v1/reports', {
            token: dev,
            raw: 'hello',
            headers: { 'content-type': 'text/plain' },
          }),
        status: 415,
        message: /.+/,
      },
      {
        name: 'prototype pollution',
        res: () =>
          call(srv.url, 'POST', '/api/v1/reports', { token: dev, raw: `{"__proto__": {"x": 1}, "reportId": "a"}` }),
        status: 400,
        message: /.+/,
      },
      {
        name: 'wait too long',
        res: () => call(srv.url, 'GET', '/api/v1/policy?wait=61', { token: dev }),
        status: 400,
        message: /wait/,
      },
      {
        name: 'unknown query parameter',
        res: () => call(srv.url, 'GET', '/api/v1/admin/findings?app=x&drop=1', { token: ADMIN }),
        status: 400,
        message: /unknown field "drop"/,
      },
      {
        name: 'bad time window',
        res: () => call(srv.url, 'GET', '/api/v1/admin/findings?since=yesterday', { token: ADMIN }),
        status: 400,
        message: /since/,
      },
      {
        name: 'bad class name',
        res: () =>
          call(srv.url, 'POST', '/api/v1/admin/classes', {
            token: ADMIN,
            body: { name: 'Robert"); DROP TABLE classes;--' },
          }),
        status: 400,
        message: /name/,
      },
      {
        name: 'enroll secret for a missing class',
        res: () => call(srv.url, 'POST', '/api/v1/admin/enroll-secrets', { token: ADMIN, body: { class: 'ghost' } }),
        status: 404,
        message: /ghost/,
      },
      {
        name: 'unknown route',
        res: () => call(srv.url, 'GET', '/api/v1/admin/nope', { token: ADMIN }),
        status: 404,
        message: /no route/,
      },
      {
        name: 'duplicate class',
        res: () => call(srv.url, 'POST', '/api/v1/admin/classes', { token: ADMIN, body: { name: 'standard' } }),
        status: 409,
        message: /exists/,
      },
    ]
    for (const c of cases) {
      const r = await c.res()
      expect(r.status, c.name).toBe(c.status)
      expect(r.body.error, c.name).toBeTypeOf('string')
      expect(r.body.message, c.name).toMatch(c.message)
    }
    expect(await count('reports')).toBe(reportsBefore)
    expect(await count('findings')).toBe(findingsBefore)
  })

  it('stores SQL-ish strings literally and finds nothing with them', async () => {
    const { secret } = await enrollDevices(srv.url, 'standard', 0, 'sql')
    const evil = "x'); DROP TABLE devices; --"
    const e = await call(srv.url, 'POST', '/api/v1/enroll', {
      body: { secret, hardwareId: evil, hostname: evil, os: 'linux', agentVersion: '1' },
    })
    expect(e.status).toBe(200)
    const d = await call(srv.url, 'GET', `/api/v1/admin/devices/${e.body.deviceId}`, { token: ADMIN })
    expect(d.body.hostname).toBe(evil)
    const f = await call(srv.url, 'GET', `/api/v1/admin/findings?app=${encodeURIComponent("' OR 1=1 --")}`, {
      token: ADMIN,
    })
    expect(f.status).toBe(200)
    expect(f.body.findings).toEqual([])
    // Spreadsheet formula injection is neutralised in CSV.
    const csv = await call(srv.url, 'GET', '/api/v1/admin/devices?format=csv', { token: ADMIN })
    expect(csv.status).toBe(200)
    expect(await count('devices')).toBeGreaterThan(0)
  })

  it('rejects an invalid policy push with file:line and changes nothing', async () => {
    const before = await count('policy_sets')
    const bad =
      'id: bad\ntitle: t\napps:\n  - id: x\n    name: X\n    match: { processNames: [bash] }\nassignments: { standard: { actions: [report] } }\n'
    const r = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [{ file: 'bad.yaml', text: bad }] },
    })
    expect(r.status).toBe(400)
    expect(r.body.error).toBe('invalid_policy')
    expect(r.body.message).toMatch(/bad\.yaml:6/)
    expect(Array.isArray(r.body.issues)).toBe(true)
    expect(await count('policy_sets')).toBe(before)
  })

  it('creates and revokes tokens and enroll secrets; secrets are shown once', async () => {
    const t = await call(srv.url, 'POST', '/api/v1/admin/tokens', {
      token: ADMIN,
      body: { role: 'admin', label: 'ops' },
    })
    expect(t.body.token).toMatch(/^idt_adm_/)
    expect((await call(srv.url, 'GET', '/api/v1/admin/whoami', { token: t.body.token })).status).toBe(200)
    const list = await call(srv.url, 'GET', '/api/v1/admin/tokens', { token: ADMIN })
    expect(JSON.stringify(list.body)).not.toContain(t.body.token)
    expect((await call(srv.url, 'POST', `/api/v1/admin/tokens/${t.body.id}/revoke`, { token: ADMIN })).status).toBe(200)
    expect((await call(srv.url, 'GET', '/api/v1/admin/whoami', { token: t.body.token })).status).toBe(401)

    const s = await call(srv.url, 'POST', '/api/v1/admin/enroll-secrets', {
      token: ADMIN,
      body: { class: 'standard', maxUses: 1 },
    })
    const enroll = (hw: string) =>
      call(srv.url, 'POST', '/api/v1/enroll', {
        body: { secret: s.body.secret, hardwareId: hw, hostname: 'h', os: 'linux', agentVersion: '1' },
      })
    expect((await enroll('once-1')).status).toBe(200)
    expect((await enroll('once-2')).status).toBe(401)
    const s2 = await call(srv.url, 'POST', '/api/v1/admin/enroll-secrets', {
      token: ADMIN,
      body: { class: 'standard' },
    })
    await call(srv.url, 'POST', `/api/v1/admin/enroll-secrets/${s2.body.id}/revoke`, { token: ADMIN })
    const r = await call(srv.url, 'POST', '/api/v1/enroll', {
      body: { secret: s2.body.secret, hardwareId: 'rev', hostname: 'h', os: 'linux', agentVersion: '1' },
    })
    expect(r.status).toBe(401)
  })

  it('lists devices by class, status and last seen; shows rollout per bundle version', async () => {
    const dev = devices[2]!
    await call(srv.url, 'POST', '/api/v1/reports', {
      token: dev.deviceToken,
      body: report({ bundleVersion: 2, findings: [finding('a')] }),
    })
    const non = await call(srv.url, 'GET', '/api/v1/admin/devices?class=standard&status=noncompliant', {
      token: auditor,
    })
    expect(non.body.devices.map((d: { id: string }) => d.id)).toContain(dev.deviceId)
    const seen = await call(srv.url, 'GET', '/api/v1/admin/devices?seenSince=1h', { token: auditor })
    expect(seen.body.devices.length).toBeGreaterThan(0)
    const none = await call(srv.url, 'GET', '/api/v1/admin/devices?seenBefore=1h', { token: auditor })
    expect(none.body.devices).toEqual([])
    const revoked = await call(srv.url, 'GET', '/api/v1/admin/devices?status=revoked', { token: auditor })
    expect(revoked.body.devices.length).toBeGreaterThan(0)
    const roll = await call(srv.url, 'GET', '/api/v1/admin/rollout', { token: auditor })
    const std = roll.body.classes.find((c: { class: string }) => c.class === 'standard')
    expect(std.versions).toContainEqual({ version: 2, devices: 1 })
    expect(std.currentVersion).toBeGreaterThanOrEqual(2)
  })
})
