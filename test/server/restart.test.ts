// Durability: everything acknowledged survives kill -9 of the server and a restart on the same data, and first start
// (key, admin token) happens once.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { verifyBundle } from '../../policies/sign.js'
import { ADMIN, backends, call, enrollDevices, finding, makeDatabase, POLICY_YAML, report } from './helpers.js'
import { type ServerProcess, spawnServer } from './process.js'

describe.each(backends)('restart on %s', (backend) => {
  const procs: ServerProcess[] = []
  let db: Awaited<ReturnType<typeof makeDatabase>>
  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL')
    await db?.drop()
  })

  it('keeps every acknowledged report, device, token and the signing key across kill -9', async () => {
    db = await makeDatabase(backend)
    const args = ['--data-dir', db.dataDir, ...(db.databaseUrl ? ['--database-url', db.databaseUrl] : [])]
    // First start without INTERDICT_ADMIN_TOKEN prints a generated admin token once.
    const first = await spawnServer(args, { INTERDICT_ADMIN_TOKEN: undefined })
    procs.push(first)
    const printed = /admin token\s+(idt_adm_\S+)/.exec(first.stdout())
    expect(printed).not.toBeNull()
    const admin = printed![1]!
    expect(statSync(join(db.dataDir, 'signing-key.pem')).mode & 0o777).toBe(0o600)
    await first.stop()

    // Automation token via env; nothing is "created" (printed) on later starts.
    const a = await spawnServer(args, { INTERDICT_ADMIN_TOKEN: ADMIN })
    procs.push(a)
    expect(a.stdout()).not.toContain('first start created')
    expect((await call(a.url, 'GET', '/api/v1/admin/whoami', { token: admin })).status).toBe(200)
    await call(a.url, 'POST', '/api/v1/admin/policies', { token: ADMIN, body: { policies: [POLICY_YAML] } })
    const { devices } = await enrollDevices(a.url, 'military', 3, 'rs')
    const bundle = await call(a.url, 'GET', '/api/v1/policy', { token: devices[0]!.deviceToken })
    const before = verifyBundle(bundle.body, devices[0]!.policyKey, { class: 'military' })
    const reports = Array.from({ length: 120 }, (_, i) => ({
      d: devices[i % 3]!,
      r: report({ findings: [finding('f')] }),
    }))
    const acks = await Promise.all(
      reports.map(({ d, r }) => call(a.url, 'POST', '/api/v1/reports', { token: d.deviceToken, body: r })),
    )
    expect(acks.every((r) => r.status === 202)).toBe(true)
    expect(await a.stop('SIGKILL')).toBeNull()

    const b = await spawnServer(args, { INTERDICT_ADMIN_TOKEN: ADMIN })
    procs.push(b)
    expect(b.stdout()).not.toContain('first start created')
    for (const d of devices) {
      const dev = await call(b.url, 'GET', `/api/v1/admin/devices/${d.deviceId}`, { token: admin })
      expect(dev.body.status).toBe('noncompliant')
    }
    const f = await call(b.url, 'GET', '/api/v1/admin/findings?limit=1000', { token: ADMIN })
    const ids = new Set(f.body.findings.map((x: { reportId: string }) => x.reportId))
    expect(reports.every(({ r }) => ids.has(r.reportId))).toBe(true)
    // Same key, same (or newer) version: enrolled agents keep trusting the server.
    const again = await call(b.url, 'GET', '/api/v1/policy', { token: devices[0]!.deviceToken })
    expect(
      verifyBundle(again.body, devices[0]!.policyKey, { class: 'military', minVersion: before.version }).version,
    ).toBe(before.version)
    // Re-sending an acknowledged report after the restart is still a duplicate.
    const dup = await call(b.url, 'POST', '/api/v1/reports', { token: reports[0]!.d.deviceToken, body: reports[0]!.r })
    expect(dup.body.duplicate).toBe(true)
    await b.stop()
  })
})
