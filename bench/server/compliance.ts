// Compliance summary over a large fleet: GET /api/v1/admin/compliance with N devices and M findings in the database
// (inserted directly, spread over classes, statuses, apps and last-seen times), and a findings-by-app query
// (GET /api/v1/admin/findings?app=telegram&since=24h, the newest 1,000). Usage: npx tsx bench/server/compliance.ts
// [--devices 100000] [--findings 1000000] [--rounds 20] [--pg]
import { sql } from 'kysely'
import { buildApp } from '../../server/app.js'
import { report } from '../lib.js'
import { ADMIN, benchServer, flag, median, sized } from './common.js'

const n = sized('devices', 100_000, 100_000)
const nFindings = sized('findings', 1_000_000, 1_000_000)
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
      const id = `dev_${j}`
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
// Findings: one INSERT ... SELECT over a generated series (the fastest bulk path on both backends): 3 per report,
// 10 apps (telegram one in ten), a third remediated, spread over the last week, each on an existing device.
const t1 = performance.now()
const series = flag('pg')
  ? sql`select g from generate_series(0, ${sql.lit(nFindings - 1)}) g`
  : sql`with recursive s(g) as (select 0 union all select g + 1 from s where g < ${sql.lit(nFindings - 1)}) select g from s`
const appId = sql`case when g % 10 = 0 then 'telegram' else 'app_' || (g % 10) end`
await sql`
  insert into findings (report_id, device_id, class, app_id, app_name, policy, signal, matched, subject, evidence,
    actions, status, scanned_at)
  select 'rep_' || (g / 3), 'dev_' || (g % ${sql.lit(n)}),
    case (g % ${sql.lit(n)}) % 4 when 0 then 'military' when 1 then 'government'
      when 2 then 'critical-infrastructure' else 'standard' end,
    ${appId}, ${appId}, 'ban-' || ${appId}, 'process-name', ${appId}, 'process:' || g,
    '{"user":"alice"}', '[{"action":"kill","result":"success"}]',
    case when g % 3 = 0 then 'remediated' else 'open' end,
    ${sql.lit(now)} - g * 600
  from (${series}) t`.execute(db)
console.error(`inserted ${nFindings} findings in ${((performance.now() - t1) / 1000).toFixed(1)} s`)
// Autovacuum would gather statistics after a bulk load like this within a minute; do it now.
if (flag('pg')) await sql`analyze`.execute(db)
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
  const byApp: number[] = []
  let rows = 0
  for (let r = 0; r < rounds; r++) {
    const t = performance.now()
    const res = await fetch(`${live.url}/api/v1/admin/findings?app=telegram&since=24h`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    })
    const body = (await res.json()) as { findings: unknown[] }
    byApp.push(performance.now() - t)
    rows = body.findings.length
  }
  const med = median(times)
  const backend = flag('pg') ? 'PostgreSQL' : 'SQLite'
  report({
    measure: `findings by app (newest ${rows} of ${nFindings / 1e6}M), ${backend}`,
    // DESIGN §6 sets no target for this query: informational (it fails only if the answer is short).
    target: '-',
    median: median(byApp),
    unit: 'ms',
    spread: `min ${Math.min(...byApp).toFixed(1)} max ${Math.max(...byApp).toFixed(1)} ms`,
    ...(rows === 1000 ? {} : { pass: false }),
  })
  report({
    measure: `compliance summary, ${total} devices + ${nFindings / 1e6}M findings, ${backend}`,
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
