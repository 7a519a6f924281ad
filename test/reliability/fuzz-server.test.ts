// Reliability: generated malformed reports, enrollments and heartbeats against the real app (in-process, app.inject):
// never a 5xx, and a rejected request writes nothing (row counts unchanged). Accepted ones write exactly what they
// should (one report row and its findings). 10,000 cases in npm test; 5x with INTERDICT_RELIABILITY_FULL=1.
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { buildApp } from '../../server/app.js'
import { ADMIN, enrollDevices, finding, makeDatabase, startServer, type TestServer } from '../server/helpers.js'

const SCALE = process.env.INTERDICT_RELIABILITY_FULL === '1' ? 5 : 1
let db: Awaited<ReturnType<typeof makeDatabase>>
let srv: TestServer
let token: string
let secret: string
let app: Awaited<ReturnType<typeof buildApp>>['app']
const tally = { cases: 0, rejected: 0, accepted: 0 }

beforeAll(async () => {
  db = await makeDatabase('sqlite')
  srv = await startServer(db, { batchDelayMs: 0 })
  const e = await enrollDevices(srv.url, 'standard', 1, 'fuzz')
  token = e.devices[0]!.deviceToken
  secret = e.secret
  app = srv.app
})
afterAll(async () => {
  console.log(`[fuzz server] ${tally.cases} requests: ${tally.rejected} rejected (4xx), ${tally.accepted} accepted`)
  await srv?.close()
  await db?.drop()
})

async function counts() {
  const r = await sql<{ reports: number; findings: number; devices: number; secrets: number; tokens: number }>`
    select (select count(*) from reports) as reports, (select count(*) from findings) as findings,
      (select count(*) from devices) as devices, (select count(*) from enroll_secrets) as secrets,
      (select count(*) from tokens) as tokens`.execute(srv.ctx.storage.db)
  return r.rows[0]!
}

// ---- generators ----
const junk = fc.oneof(
  fc.anything(),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.constant(null),
  fc.constant(''),
  fc.string({ unit: 'grapheme', maxLength: 5000 }),
  fc.constant('__proto__'),
  fc.constant({ __proto__: { admin: true } }),
  fc.constant('9999-99-99T99:99:99Z'),
  fc.constant(-1),
  fc.constant(2 ** 63),
)
type Obj = Record<string, unknown>

/** Start from a valid object and break it: drop, replace or add fields, at the top or one level down. */
function mutated(base: () => Obj) {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('drop' as const), key: fc.nat(), nested: fc.boolean() }),
    fc.record({ kind: fc.constant('set' as const), key: fc.nat(), nested: fc.boolean(), value: junk }),
    fc.record({ kind: fc.constant('add' as const), name: fc.string({ maxLength: 12 }), value: junk }),
  )
  return fc.array(op, { minLength: 0, maxLength: 4 }).map((ops) => {
    const o = base()
    for (const m of ops) {
      const keys = Object.keys(o)
      if (m.kind === 'add') {
        o[m.name] = m.value
        continue
      }
      const k = keys[m.key % keys.length]!
      let target: Obj = o
      let key = k
      const inner = o[k]
      if (m.nested && inner && typeof inner === 'object') {
        const child = Array.isArray(inner) ? (inner[0] as Obj | undefined) : (inner as Obj)
        if (child && typeof child === 'object') {
          const ck = Object.keys(child)
          if (ck.length) {
            target = child
            key = ck[m.key % ck.length]!
          }
        }
      }
      if (m.kind === 'drop') delete target[key]
      else target[key] = m.value
    }
    return o
  })
}

const validReport = (): Obj => ({
  reportId: randomUUID(),
  bundleVersion: 1,
  scannedAt: new Date().toISOString(),
  findings: [finding('f0'), finding('f1')],
  actions: [{ finding: 'f0', action: 'kill', result: 'success' }],
  inventory: { processes: 300, packages: 1400 },
})
// Semantically wrong but schema-valid: the checks after validation must not leave half a report behind.
const semantic = fc.constantFrom<() => Obj>(
  () => ({ ...validReport(), findings: [finding('dup'), finding('dup')] }),
  () => ({ ...validReport(), actions: [{ finding: 'nope', action: 'kill', result: 'success' }] }),
  () => ({ ...validReport(), scannedAt: new Date(Date.now() + 3 * 86_400_000).toISOString() }),
  () => ({ ...validReport(), findings: Array.from({ length: 1001 }, (_, i) => finding(`f${i}`)) }),
)

const body = (obj: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 6, arbitrary: obj.map((o) => JSON.stringify(o) ?? 'null') },
    { weight: 1, arbitrary: obj.map((o) => (JSON.stringify(o) ?? 'null').slice(0, -1)) }, // truncated
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  )
const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant('good') },
  { weight: 1, arbitrary: fc.constant('none') },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
)
const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'),
  },
)

async function post(url: string, payload: string, a: string, ct: string) {
  const headers: Record<string, string> = { 'content-type': ct }
  if (a === 'good') headers.authorization = `Bearer ${token}`
  else if (a !== 'none') headers.authorization = `Bearer ${a.replace(/[^\x20-\x7e]/g, '')}`
  const res = await app.inject({ method: 'POST', url, headers, payload })
  tally.cases++
  return res
}

describe('fuzzing the device protocol (in-process)', () => {
  it('reports: no 5xx, rejected writes nothing, accepted writes one report and its findings', async () => {
    const reportArb = fc.oneof(
      { weight: 5, arbitrary: mutated(validReport) },
      { weight: 1, arbitrary: semantic.map((f) => f()) },
    )
    await fc.assert(
      fc.asyncProperty(body(reportArb), auth, contentType, async (payload, a, ct) => {
        const before = await counts()
        const res = await post('/api/v1/reports', payload, a, ct)
        expect(res.statusCode, res.body).toBeLessThan(500)
        const after = await counts()
        if (res.statusCode >= 400) {
          tally.rejected++
          expect(after).toEqual(before)
        } else {
          tally.accepted++
          expect(res.statusCode).toBe(202)
          const sentFindings = (JSON.parse(payload) as { findings: unknown[] }).findings.length
          const dup = (JSON.parse(res.body) as { duplicate: boolean }).duplicate
          expect(after.reports - before.reports).toBe(dup ? 0 : 1)
          expect(after.findings - before.findings).toBe(dup ? 0 : sentFindings)
          expect({ ...after, reports: 0, findings: 0 }).toEqual({ ...before, reports: 0, findings: 0 })
        }
      }),
      { numRuns: 4000 * SCALE },
    )
  }, 120_000)

  it('enrollments: no 5xx, rejected writes nothing', async () => {
    const validEnroll = (): Obj => ({
      secret,
      hardwareId: `fuzz-${randomUUID()}`,
      hostname: 'h',
      os: 'linux',
      agentVersion: '0.1.0',
    })
    await fc.assert(
      fc.asyncProperty(body(mutated(validEnroll)), contentType, async (payload, ct) => {
        const before = await counts()
        const res = await post('/api/v1/enroll', payload, 'none', ct)
        expect(res.statusCode, res.body).toBeLessThan(500)
        const after = await counts()
        if (res.statusCode >= 400) {
          tally.rejected++
          expect(after).toEqual(before)
        } else {
          tally.accepted++
          expect(after.devices - before.devices).toBeLessThanOrEqual(1)
          expect(after.reports).toBe(before.reports)
        }
      }),
      { numRuns: 3000 * SCALE },
    )
  }, 120_000)

  it('heartbeats: no 5xx, never a new row', async () => {
    const validHb = (): Obj => ({ bundleVersion: 1, agentVersion: '0.1.0', health: { ok: true, outbox: 0 } })
    await fc.assert(
      fc.asyncProperty(body(mutated(validHb)), auth, contentType, async (payload, a, ct) => {
        const before = await counts()
        const res = await post('/api/v1/heartbeat', payload, a, ct)
        expect(res.statusCode, res.body).toBeLessThan(500)
        if (res.statusCode >= 400) tally.rejected++
        else tally.accepted++
        expect(await counts()).toEqual(before)
      }),
      { numRuns: 3000 * SCALE },
    )
  }, 120_000)

  it('the admin token still works and nothing leaked to it', async () => {
    const r = await app.inject({
      method: 'GET',
      url: '/api/v1/admin/whoami',
      headers: { authorization: `Bearer ${ADMIN}` },
    })
    expect(r.statusCode).toBe(200)
  })
})
