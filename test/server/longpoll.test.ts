// Long-poll push: every waiting agent is answered at once when a new bundle is pushed, also when the agents wait on a
// different server instance than the one that received the push (PostgreSQL LISTEN/NOTIFY).
import { afterAll, describe, expect, it } from 'vitest'
import { verifyBundle } from '../../policies/sign.js'
import {
  ADMIN,
  backends,
  call,
  enrollDevices,
  makeDatabase,
  PG_URL,
  POLICY_2,
  POLICY_YAML,
  startServer,
  type TestServer,
} from './helpers.js'

async function until(cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for condition')
    await new Promise((r) => setTimeout(r, 20))
  }
}

const N = 100

async function waitAll(url: string, devices: { deviceToken: string }[], etag: string) {
  return devices.map((d) =>
    call(url, 'GET', '/api/v1/policy?wait=30', { token: d.deviceToken, headers: { 'if-none-match': etag } }).then(
      (r) => ({
        ...r,
        at: Date.now(),
      }),
    ),
  )
}

describe.each(backends)('long-poll on %s', (backend) => {
  const cleanup: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c()
  })

  it(`answers ${N} waiting clients right after a push`, async () => {
    const db = await makeDatabase(backend)
    cleanup.push(db.drop)
    const srv = await startServer(db)
    cleanup.push(srv.close)
    const { devices } = await enrollDevices(srv.url, 'military', 10, 'lp')
    const etag = srv.ctx.policy.get('military')!.etag
    const waiters = await waitAll(
      srv.url,
      Array.from({ length: N }, (_, i) => devices[i % 10]!),
      etag,
    )
    await until(() => srv.ctx.policy.waiterCount() === N)
    // Without a push, nothing is answered.
    await new Promise((r) => setTimeout(r, 200))
    const pushedAt = Date.now()
    const push = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [POLICY_YAML] },
    })
    expect(push.status).toBe(201)
    const res = await Promise.all(waiters)
    const worst = Math.max(...res.map((r) => r.at)) - pushedAt
    expect(res.every((r) => r.status === 200)).toBe(true)
    expect(worst).toBeLessThan(2000)
    const v = verifyBundle(res[0]!.body, devices[0]!.policyKey, { class: 'military' })
    expect(res[0]!.headers.get('etag')).toBe(`"military.${v.version}"`)
    expect(srv.ctx.policy.waiterCount()).toBe(0)
  })

  it('answers 304 when the wait runs out and drops waiters whose client went away', async () => {
    const db = await makeDatabase(backend)
    cleanup.push(db.drop)
    const srv = await startServer(db)
    cleanup.push(srv.close)
    const { devices } = await enrollDevices(srv.url, 'standard', 1, 'lp304')
    const etag = srv.ctx.policy.get('standard')!.etag
    const t0 = Date.now()
    const r = await call(srv.url, 'GET', '/api/v1/policy?wait=1', {
      token: devices[0]!.deviceToken,
      headers: { 'if-none-match': etag },
    })
    expect(r.status).toBe(304)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    const ac = new AbortController()
    const p = fetch(`${srv.url}/api/v1/policy?wait=30`, {
      headers: { authorization: `Bearer ${devices[0]!.deviceToken}`, 'if-none-match': etag },
      signal: ac.signal,
    }).catch(() => undefined)
    await until(() => srv.ctx.policy.waiterCount() === 1)
    ac.abort()
    await p
    await until(() => srv.ctx.policy.waiterCount() === 0)
  })
})

describe.skipIf(!PG_URL)('long-poll across two instances on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let a: TestServer
  let b: TestServer
  afterAll(async () => {
    await a?.close()
    await b?.close()
    await db?.drop()
  })

  it('a push on instance A answers agents waiting on instance B', async () => {
    db = await makeDatabase('postgres')
    a = await startServer(db)
    b = await startServer(db)
    const { devices } = await enrollDevices(a.url, 'military', 10, 'two')
    await until(() => b.ctx.policy.get('military') !== undefined)
    const etag = b.ctx.policy.get('military')!.etag
    const waiters = await waitAll(
      b.url,
      Array.from({ length: N }, (_, i) => devices[i % 10]!),
      etag,
    )
    await until(() => b.ctx.policy.waiterCount() === N)
    const pushedAt = Date.now()
    const push = await call(a.url, 'POST', '/api/v1/admin/policies', { token: ADMIN, body: { policies: [POLICY_2] } })
    expect(push.status).toBe(201)
    const res = await Promise.all(waiters)
    expect(res.every((r) => r.status === 200)).toBe(true)
    expect(Math.max(...res.map((r) => r.at)) - pushedAt).toBeLessThan(2000)
    const v = verifyBundle(res[0]!.body, devices[0]!.policyKey, { class: 'military' })
    expect(v.apps.map((x) => x.id)).toContain('otherapp')
    // Revoking on A takes effect on B at once (token caches flushed through NOTIFY).
    expect((await call(b.url, 'GET', '/api/v1/policy', { token: devices[1]!.deviceToken })).status).toBe(200)
    await call(a.url, 'POST', `/api/v1/admin/devices/${devices[1]!.deviceId}/revoke`, { token: ADMIN })
    await until(() => true, 100)
    await new Promise((r) => setTimeout(r, 200))
    expect((await call(b.url, 'GET', '/api/v1/policy', { token: devices[1]!.deviceToken })).status).toBe(401)
  })
})
