// Compliance summary over a large fleet: GET /api/v1/admin/compliance with N devices in the database (inserted
// directly, spread over classes, statuses and last-seen times). Usage: npx tsx bench/server/compliance.ts
// [--devices 100000] [--rounds 20] [--pg]
import { randomBytes } from 'node:crypto'
import { buildApp } from '../../server/app.js'
import { report } from '../lib.js'
import { ADMIN, benchServer, flag, median, sized } from './common.js'

const n = sized('devices', 100_000, 100_000)
const rounds = sized('rounds', 20, 5)
const srv = await benchServer({ postgres: flag('pg') })
await srv.stopProcessOnly()
// Fill the database in-process (fast, no HTTP), then measure over HTTP against a fresh server process.
const { app, ctx } = await buildApp({
  dataDir: srv.dataDir,
  databaseUrl: srv.databaseUrl,
  logger: false,
  adminToken: ADMIN,
})
const classes = ['military', 'government', 'critical-infrastructure', 'standard']
const statuses = ['compliant', 'noncompliant', 'remediated', 'pending'] as const
const db = ctx.storage.db
for (const name of classes) {
  await db
    .insertInto('classes')
    .values({ name, description: null, created_at: Date.now() })
    .onConflict((oc) => oc.doNothing())
    .execute()
}
const now = Date.now()
const t0 = performance.now()
for (let i = 0; i < n; i += 2000) {
  await db.transaction().execute(async (trx) => {
    const rows = Array.from({ length: Math.min(2000, n - i) }, (_, k) => {
      const j = i + k
      const id = `dev_${j}_${randomBytes(3).toString('hex')}`
      return {
        id,
        hardware_id: id,
        class: classes[j % 4]!,
        hostname: `host-${j}`,
        os: 'linux',
        agent_version: '0.1.0',
        enrolled_at: now - 86_400_000,
        // ~5% silent (unknown)
        last_seen: j % 20 === 0 ? now - 3_600_000 : now - (j % 60) * 1000,
        last_report_at: null,
        last_report_id: null,
        last_heartbeat_at: null,
        status: statuses[(j * 7) % 4]!,
        open_findings: 0,
        bundle_version: 1,
        health: null,
        revoked_at: null,
      }
    })
    for (let c = 0; c < rows.length; c += 500)
      await trx
        .insertInto('devices')
        .values(rows.slice(c, c + 500))
        .execute()
  })
}
console.error(`inserted ${n} devices in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
await app.close()
const live = await srv.restart()
try {
  const times: number[] = []
  let total = 0
  for (let r = 0; r < rounds; r++) {
    const t = performance.now()
    const res = await fetch(`${live.url}/api/v1/admin/compliance`, { headers: { authorization: `Bearer ${ADMIN}` } })
    const body = (await res.json()) as { totals: { total: number } }
    times.push(performance.now() - t)
    total = body.totals.total
  }
  const med = median(times)
  report({
    measure: `compliance summary, ${total} devices, ${flag('pg') ? 'PostgreSQL' : 'SQLite'}`,
    target: '< 100 ms',
    median: med,
    unit: 'ms',
    spread: `min ${Math.min(...times).toFixed(1)} max ${Math.max(...times).toFixed(1)} ms`,
    pass: med < 100 && total === n,
  })
  console.error(
    `compliance summary over ${total} devices (${flag('pg') ? 'PostgreSQL' : 'SQLite'}): median ${median(times).toFixed(1)} ms ` +
      `(HTTP round trip included), min ${Math.min(...times).toFixed(1)} ms`,
  )
} finally {
  await srv.stop()
}
