// Reliability: `kill -9` of the real server process while 200 simulated agents send reports (DESIGN §6: nothing
// acknowledged is ever lost). Every report that got a 202 must be stored exactly once after the restart; the agents
// resend the rest, and a resend of an acknowledged report is answered `duplicate`, never stored twice.
// Fast variant (npm test): SQLite, one crash. INTERDICT_RELIABILITY_FULL=1: several crashes; PostgreSQL too when
// INTERDICT_TEST_PG is set.
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { ADMIN, type Backend, backends, enrollDevices, finding, makeDatabase } from '../server/helpers.js'
import { type ServerProcess, spawnServer } from '../server/process.js'

const FULL = process.env.INTERDICT_RELIABILITY_FULL === '1'
const AGENTS = 200
const CRASHES = FULL ? 5 : 1
const FINDINGS_PER_REPORT = 2

interface Db {
  dataDir: string
  databaseUrl?: string
  drop: () => Promise<void>
}

/** Row counts for a set of report ids, read straight from the database the server wrote. */
async function stored(db: Db): Promise<{ reports: Map<string, number>; findings: Map<string, number> }> {
  const reports = new Map<string, number>()
  const findings = new Map<string, number>()
  if (!db.databaseUrl) {
    const conn = new Database(join(db.dataDir, 'interdict.db'), { readonly: true })
    try {
      for (const r of conn.prepare('select report_id id, count(*) n from reports group by report_id').all() as {
        id: string
        n: number
      }[])
        reports.set(r.id, r.n)
      for (const r of conn.prepare('select report_id id, count(*) n from findings group by report_id').all() as {
        id: string
        n: number
      }[])
        findings.set(r.id, r.n)
    } finally {
      conn.close()
    }
  } else {
    const c = new pg.Client({ connectionString: db.databaseUrl })
    await c.connect()
    try {
      const r1 = await c.query('select report_id id, count(*)::int n from reports group by report_id')
      for (const r of r1.rows) reports.set(r.id, r.n)
      const r2 = await c.query('select report_id id, count(*)::int n from findings group by report_id')
      for (const r of r2.rows) findings.set(r.id, r.n)
    } finally {
      await c.end()
    }
  }
  return { reports, findings }
}

function makeReport(id: string) {
  return JSON.stringify({
    reportId: id,
    bundleVersion: 1,
    scannedAt: new Date().toISOString(),
    findings: Array.from({ length: FINDINGS_PER_REPORT }, (_, i) => finding(`f${i}`)),
    actions: [{ finding: 'f0', action: 'kill', result: 'success' }],
    inventory: { processes: 300, packages: 1400 },
  })
}

type Outcome = 'acked' | 'duplicate' | 'failed'

async function send(url: string, token: string, id: string): Promise<Outcome> {
  try {
    const r = await fetch(`${url}/api/v1/reports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: makeReport(id),
      signal: AbortSignal.timeout(10_000),
    })
    const body = (await r.json().catch(() => ({}))) as { duplicate?: boolean }
    if (r.status >= 500) return 'failed'
    if (r.status !== 202) throw new Error(`report ${id}: unexpected ${r.status}`)
    return body.duplicate ? 'duplicate' : 'acked'
  } catch (err) {
    if ((err as Error).message.startsWith('report ')) throw err
    return 'failed'
  }
}

const start = (db: Db) =>
  spawnServer(['--data-dir', db.dataDir, ...(db.databaseUrl ? ['--database-url', db.databaseUrl] : [])], {
    INTERDICT_ADMIN_TOKEN: ADMIN,
  })

const chosen: Backend[] = FULL ? backends : ['sqlite']
const cleanup: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {})
})

describe.each(chosen)('kill -9 of the server while agents report (%s)', (backend) => {
  it(
    `every acknowledged report is stored exactly once (${AGENTS} agents, ${CRASHES} crash(es))`,
    async () => {
      const db = await makeDatabase(backend)
      cleanup.push(db.drop)
      let srv: ServerProcess = await start(db)
      cleanup.push(() => srv.stop('SIGKILL'))
      const { devices } = await enrollDevices(srv.url, 'standard', AGENTS, 'crash')

      const acked = new Map<string, string>() // reportId -> token: got 202
      const pending = new Map<string, string>() // reportId -> token: sent, no 202 yet (agent outbox)
      let sent = 0
      let faults = 0
      for (let crash = 0; crash < CRASHES; crash++) {
        let url = srv.url
        let stop = false
        // Each agent sends reports back to back until the server dies under it.
        const agents = devices.map(async (d) => {
          while (!stop) {
            const id = randomUUID()
            pending.set(id, d.deviceToken)
            sent++
            const o = await send(url, d.deviceToken, id)
            if (o === 'failed') return
            pending.delete(id)
            acked.set(id, d.deviceToken)
          }
        })
        // Kill mid-stream: once a few hundred reports of this round were acknowledged.
        const target = acked.size + 300 + Math.floor(Math.random() * 300)
        const t0 = Date.now()
        while (acked.size < target && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5))
        srv.child.kill('SIGKILL')
        faults++
        await srv.stop('SIGKILL')
        stop = true
        await Promise.all(agents)

        // Same data, new process (new port). Everything acknowledged so far is there exactly once.
        srv = await start(db)
        url = srv.url
        const after = await stored(db)
        const lost = [...acked.keys()].filter((id) => after.reports.get(id) !== 1)
        const badFindings = [...acked.keys()].filter((id) => after.findings.get(id) !== FINDINGS_PER_REPORT)
        expect(lost).toEqual([])
        expect(badFindings).toEqual([])

        // The agents resend their outbox: every unacknowledged report, plus a sample of acknowledged ones
        // (an ack lost on the wire looks the same to the agent).
        const resendAcked = [...acked].slice(-AGENTS)
        const outcomes = await Promise.all([
          ...[...pending].map(async ([id, token]) => ({ id, o: await send(url, token, id), was: 'pending' })),
          ...resendAcked.map(async ([id, token]) => ({ id, o: await send(url, token, id), was: 'acked' })),
        ])
        for (const { id, o, was } of outcomes) {
          expect(o, `${was} ${id}`).not.toBe('failed')
          if (was === 'acked') expect(o, `resent acknowledged ${id}`).toBe('duplicate')
          else {
            acked.set(id, pending.get(id)!)
            pending.delete(id)
          }
        }
        const inFlight = outcomes.filter((x) => x.was === 'pending')
        const final = await stored(db)
        const dupRows = [...final.reports.values()].filter((n) => n > 1).length
        const dupFindings = [...acked.keys()].filter((id) => final.findings.get(id) !== FINDINGS_PER_REPORT).length
        const missing = [...acked.keys()].filter((id) => final.reports.get(id) !== 1).length
        console.log(
          `[crash ${backend} ${crash + 1}/${CRASHES}] sent ${sent}, acked ${acked.size - inFlight.length} before ` +
            `kill, in flight at kill ${inFlight.length} (stored anyway: ` +
            `${inFlight.filter((x) => x.o === 'duplicate').length}), resent ${outcomes.length}, lost ${lost.length}, ` +
            `duplicates ${dupRows + dupFindings}`,
        )
        expect(missing).toBe(0)
        expect(dupRows + dupFindings).toBe(0)
        expect(pending.size).toBe(0)
        expect(final.reports.size).toBe(acked.size)
      }
      console.log(`[crash ${backend}] faults injected: ${faults} x kill -9; reports stored ${acked.size}; lost 0`)
      await srv.stop()
    },
    FULL ? 300_000 : 90_000,
  )
})
