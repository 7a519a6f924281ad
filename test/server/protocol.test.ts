// Device protocol against a real server and real database: enroll, signed bundles with ETag/304, reports (idempotent,
// durable), heartbeats and the compliance states they produce.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyBundle } from '../../policies/sign.js'
import {
  ADMIN,
  backends,
  call,
  enrollDevices,
  finding,
  makeDatabase,
  POLICY_2,
  POLICY_YAML,
  report,
  startServer,
  type TestServer,
} from './helpers.js'

describe.each(backends)('device protocol on %s', (backend) => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let srv: TestServer
  beforeAll(async () => {
    db = await makeDatabase(backend)
    srv = await startServer(db)
  })
  afterAll(async () => {
    await srv?.close()
    await db?.drop()
  })

  it('enrolls with a class secret and rejects unknown secrets', async () => {
    const bad = await call(srv.url, 'POST', '/api/v1/enroll', {
      body: { secret: 'idt_enr_nope', hardwareId: 'x', hostname: 'h', os: 'linux', agentVersion: '1' },
    })
    expect(bad.status).toBe(401)
    expect(bad.body.error).toBe('invalid_secret')
    const { devices } = await enrollDevices(srv.url, 'military', 1)
    const d = devices[0]!
    expect(d.deviceId).toMatch(/^dev_/)
    expect(d.deviceToken).toMatch(/^idt_dev_/)
    expect(d.policyKey).toContain('BEGIN PUBLIC KEY')
    // Only the hash of the token is stored.
    const rows = await srv.ctx.storage.db.selectFrom('tokens').select('hash').execute()
    expect(rows.some((r) => r.hash === d.deviceToken)).toBe(false)
  })

  it('re-enrolling the same hardware id keeps the device and replaces its token', async () => {
    const { secret, devices } = await enrollDevices(srv.url, 'military', 1, 'reenroll')
    const d = devices[0]!
    const again = await call(srv.url, 'POST', '/api/v1/enroll', {
      body: { secret, hardwareId: d.hardwareId, hostname: 'renamed', os: 'linux', agentVersion: '0.2.0' },
    })
    expect(again.status).toBe(200)
    expect(again.body.deviceId).toBe(d.deviceId)
    expect((await call(srv.url, 'GET', '/api/v1/policy', { token: d.deviceToken })).status).toBe(401)
    expect((await call(srv.url, 'GET', '/api/v1/policy', { token: again.body.deviceToken })).status).toBe(200)
  })

  it('serves a signed bundle for the device class with ETag, 304, and growing versions on push', async () => {
    const { devices } = await enrollDevices(srv.url, 'military', 1, 'pol')
    const d = devices[0]!
    const first = await call(srv.url, 'GET', '/api/v1/policy', { token: d.deviceToken })
    expect(first.status).toBe(200)
    const p1 = verifyBundle(first.body, d.policyKey, { class: 'military' })
    const etag = first.headers.get('etag')!
    expect(etag).toBe(`"military.${p1.version}"`)
    const same = await call(srv.url, 'GET', '/api/v1/policy', {
      token: d.deviceToken,
      headers: { 'if-none-match': etag },
    })
    expect(same.status).toBe(304)

    const push = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [POLICY_YAML] },
    })
    expect(push.status).toBe(201)
    const mil = push.body.classes.find((c: { class: string }) => c.class === 'military')
    expect(mil.added).toEqual(['ban-chatapp/chatapp'])
    const next = await call(srv.url, 'GET', '/api/v1/policy', {
      token: d.deviceToken,
      headers: { 'if-none-match': etag },
    })
    expect(next.status).toBe(200)
    const p2 = verifyBundle(next.body, d.policyKey, { class: 'military', minVersion: p1.version + 1 })
    expect(p2.apps.map((a) => a.id)).toEqual(['chatapp'])
    expect(p2.apps[0]!.actions).toEqual(['report', 'kill', 'quarantine'])
    expect(Date.parse(p2.expiresAt) - Date.parse(p2.issuedAt)).toBe(7 * 86_400_000)

    // Pushing the same content again issues no new version.
    const again = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [POLICY_YAML] },
    })
    expect(again.body.classes.every((c: { newVersion: number | null }) => c.newVersion === null)).toBe(true)
    const unchanged = await call(srv.url, 'GET', '/api/v1/policy', {
      token: d.deviceToken,
      headers: { 'if-none-match': next.headers.get('etag')! },
    })
    expect(unchanged.status).toBe(304)
  })

  it('re-issues a bundle (new version, same content) when it is close to expiry', async () => {
    const { devices } = await enrollDevices(srv.url, 'military', 1, 'exp')
    const d = devices[0]!
    const before = srv.ctx.policy.get('military')!
    await srv.ctx.storage.db
      .updateTable('bundles')
      .set({ expires_at: Date.now() + 3_600_000 })
      .where('class', '=', 'military')
      .where('version', '=', before.version)
      .execute()
    await srv.ctx.policy.maintain()
    const after = srv.ctx.policy.get('military')!
    expect(after.version).toBe(before.version + 1)
    expect(after.contentHash).toBe(before.contentHash)
    const r = await call(srv.url, 'GET', '/api/v1/policy', {
      token: d.deviceToken,
      headers: { 'if-none-match': before.etag },
    })
    expect(r.status).toBe(200)
    verifyBundle(r.body, d.policyKey, { class: 'military', minVersion: after.version })
  })

  it('accepts reports once (idempotent by reportId) and derives compliance', async () => {
    const { devices } = await enrollDevices(srv.url, 'standard', 5, 'rep')
    const [clean, bad, fixed, pending, silent] = devices
    const r1 = report()
    const a = await call(srv.url, 'POST', '/api/v1/reports', { token: clean!.deviceToken, body: r1 })
    expect(a.status).toBe(202)
    expect(a.body).toEqual({ reportId: r1.reportId, accepted: true, duplicate: false })
    const dup = await call(srv.url, 'POST', '/api/v1/reports', { token: clean!.deviceToken, body: r1 })
    expect(dup.status).toBe(202)
    expect(dup.body.duplicate).toBe(true)
    const n = await srv.ctx.storage.db
      .selectFrom('reports')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('report_id', '=', r1.reportId)
      .executeTakeFirstOrThrow()
    expect(Number(n.n)).toBe(1)

    const open = report({
      findings: [finding('f1')],
      actions: [{ finding: 'f1', action: 'report', result: 'success' }],
    })
    expect((await call(srv.url, 'POST', '/api/v1/reports', { token: bad!.deviceToken, body: open })).status).toBe(202)
    const killed = report({
      findings: [finding('f1')],
      actions: [
        { finding: 'f1', action: 'report', result: 'success' },
        { finding: 'f1', action: 'kill', result: 'success' },
      ],
    })
    expect((await call(srv.url, 'POST', '/api/v1/reports', { token: fixed!.deviceToken, body: killed })).status).toBe(
      202,
    )
    // An older report arriving late (from an outbox) does not override the newer status.
    const old = report({ scannedAt: new Date(Date.now() - 3_600_000).toISOString(), findings: [finding('x')] })
    expect((await call(srv.url, 'POST', '/api/v1/reports', { token: fixed!.deviceToken, body: old })).status).toBe(202)
    const hb = await call(srv.url, 'POST', '/api/v1/heartbeat', {
      token: pending!.deviceToken,
      body: { bundleVersion: 1, agentVersion: '0.1.1', health: { status: 'ok', outbox: 0 } },
    })
    expect(hb.status).toBe(200)
    expect(hb.body.heartbeatIntervalSec).toBe(60)
    await srv.ctx.storage.db
      .updateTable('devices')
      .set({ last_seen: Date.now() - 181_000 })
      .where('id', '=', silent!.deviceId)
      .execute()

    const status = async (id: string) =>
      (await call(srv.url, 'GET', `/api/v1/admin/devices/${id}`, { token: ADMIN })).body.status
    expect(await status(clean!.deviceId)).toBe('compliant')
    expect(await status(bad!.deviceId)).toBe('noncompliant')
    expect(await status(fixed!.deviceId)).toBe('remediated')
    expect(await status(pending!.deviceId)).toBe('pending')
    expect(await status(silent!.deviceId)).toBe('unknown')
    // The late report refreshed last_seen only; the heartbeat set what it carries.
    const row = async (id: string) =>
      srv.ctx.storage.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    const f1 = await row(fixed!.deviceId)
    expect(f1.last_report_id).toBe(killed.reportId)
    expect(Number(f1.last_report_at)).toBe(Date.parse(killed.scannedAt))
    expect(Date.now() - Number(f1.last_seen)).toBeLessThan(60_000)
    const p1 = await row(pending!.deviceId)
    expect(p1.agent_version).toBe('0.1.1')
    expect(JSON.parse(p1.health as string)).toEqual({ status: 'ok', outbox: 0 })
    expect(Number(p1.last_heartbeat_at)).toBeGreaterThan(Date.now() - 60_000)

    const sum = await call(srv.url, 'GET', '/api/v1/admin/compliance', { token: ADMIN })
    const std = sum.body.classes.find((c: { class: string }) => c.class === 'standard')
    expect(std).toMatchObject({ total: 5, compliant: 1, noncompliant: 1, remediated: 1, pending: 1, unknown: 1 })

    const f = await call(srv.url, 'GET', '/api/v1/admin/findings?app=chatapp&class=standard&since=24h', {
      token: ADMIN,
    })
    expect(f.body.findings.length).toBe(3)
    const csv = await call(srv.url, 'GET', '/api/v1/admin/findings?app=chatapp&format=csv', { token: ADMIN })
    expect(csv.headers.get('content-type')).toContain('text/csv')
    expect(csv.text.split('\r\n')[0]).toContain('scannedAt,deviceId,hostname,class,appId')
  })

  it('batches concurrent reports and acknowledges each after commit', async () => {
    const { devices } = await enrollDevices(srv.url, 'standard', 4, 'batch')
    const reports = Array.from({ length: 200 }, (_, i) => ({
      d: devices[i % 4]!,
      r: report({ findings: [finding('a')] }),
    }))
    const res = await Promise.all(
      reports.map(({ d, r }) => call(srv.url, 'POST', '/api/v1/reports', { token: d.deviceToken, body: r })),
    )
    expect(res.every((r) => r.status === 202 && r.body.duplicate === false)).toBe(true)
    const ids = reports.map(({ r }) => r.reportId)
    const stored = await srv.ctx.storage.db
      .selectFrom('reports')
      .select('report_id')
      .where('report_id', 'in', ids)
      .execute()
    expect(stored.length).toBe(200)
    expect(srv.ctx.ingestor.batches).toBeLessThan(200)
    // The same reports again, concurrently: all duplicates, nothing new.
    const again = await Promise.all(
      reports.map(({ d, r }) => call(srv.url, 'POST', '/api/v1/reports', { token: d.deviceToken, body: r })),
    )
    expect(again.every((r) => r.status === 202 && r.body.duplicate === true)).toBe(true)
    const findings = await srv.ctx.storage.db
      .selectFrom('findings')
      .select('seq')
      .where('report_id', 'in', ids)
      .execute()
    expect(findings.length).toBe(200)
  })

  it('refuses a reportId already used by another device, and reports from revoked devices', async () => {
    const { devices } = await enrollDevices(srv.url, 'standard', 2, 'cross')
    const r = report()
    expect((await call(srv.url, 'POST', '/api/v1/reports', { token: devices[0]!.deviceToken, body: r })).status).toBe(
      202,
    )
    const other = await call(srv.url, 'POST', '/api/v1/reports', { token: devices[1]!.deviceToken, body: r })
    expect(other.status).toBe(409)
    const rev = await call(srv.url, 'POST', `/api/v1/admin/devices/${devices[1]!.deviceId}/revoke`, { token: ADMIN })
    expect(rev.status).toBe(200)
    const after = await call(srv.url, 'POST', '/api/v1/reports', { token: devices[1]!.deviceToken, body: report() })
    expect(after.status).toBe(401)
    const poll = await call(srv.url, 'GET', '/api/v1/policy', { token: devices[1]!.deviceToken })
    expect(poll.status).toBe(401)
  })

  it('merges pushes by policy id; replace makes the push the whole set; dry-run writes nothing', async () => {
    const before = await call(srv.url, 'GET', '/api/v1/admin/policies', { token: ADMIN })
    const dry = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [POLICY_2], dryRun: true },
    })
    expect(dry.status).toBe(200)
    expect(dry.body.dryRun).toBe(true)
    const mil = dry.body.classes.find((c: { class: string }) => c.class === 'military')
    expect(mil.added).toEqual(['ban-other/otherapp'])
    const same = await call(srv.url, 'GET', '/api/v1/admin/policies', { token: ADMIN })
    expect(same.body).toEqual(before.body)

    const push = await call(srv.url, 'POST', '/api/v1/admin/policies', { token: ADMIN, body: { policies: [POLICY_2] } })
    expect(push.status).toBe(201)
    const list = await call(srv.url, 'GET', '/api/v1/admin/policies', { token: ADMIN })
    expect(list.body.policies.map((p: { id: string }) => p.id)).toEqual(['ban-chatapp', 'ban-other'])
    const repl = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [{ file: 'other.yaml', text: JSON.stringify(POLICY_2) }], replace: true },
    })
    expect(repl.status).toBe(201)
    const removed = repl.body.classes.find((c: { class: string }) => c.class === 'standard')
    expect(removed.removed).toEqual(['ban-chatapp/chatapp'])
    const hist = await call(srv.url, 'GET', '/api/v1/admin/policies/history?class=military', { token: ADMIN })
    const versions = hist.body.bundles.map((b: { version: number }) => b.version)
    expect(versions).toEqual([...versions].sort((a: number, b: number) => b - a))
  })
})
