// Reliability: an agent offline for a simulated day (DESIGN §3, §6). The real daemon runs against the real server
// (SQLite); the server goes down, and a day of the daemon's work is driven through it on an injected clock: a full
// scan every 15 minutes whose findings change each time, heartbeats, and a real banned process started mid-day. The
// outbox must stay within its bound and drop by its documented policy (heartbeats, then clean reports, then the
// OLDEST findings; never the newest), enforcement must go on, and when the server returns the backlog must drain in
// order with every report stored exactly once (read back from the server's database).
//
// Fast variant (npm test): heartbeats every 5 simulated minutes. INTERDICT_RELIABILITY_FULL=1: every minute (1,440).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import type { Collector, PackageRow } from '../../agent/collectors/types.js'
import { Daemon } from '../../agent/daemon.js'
import { loadConfig } from '../../agent/sync/config.js'
import { enroll } from '../../agent/sync/enroll.js'
import { REPORTS_ROUTE } from '../../agent/sync/reports.js'
import { buildApp } from '../../server/app.js'
import { ADMIN, call, enrollDevices, makeDatabase } from '../server/helpers.js'

const FULL = process.env.INTERDICT_RELIABILITY_FULL === '1'
const MIN = 60_000
const SCAN_MS = 15 * MIN
const CYCLES = (24 * 60 * MIN) / SCAN_MS // 96 full scans in a day
const HEARTBEAT_MS = FULL ? MIN : 5 * MIN
const LIMIT = 40 // outbox bound for this test (the default, 5,000, would not fill in a day)
const WATCHER_CYCLE = 60 // the real banned process starts at 15:00 simulated
// Unique to this run: other suites on the machine run agents too, and processes are machine-wide.
const BANNED = `offban-${randomBytes(3).toString('hex')}`

const cleanups: (() => Promise<unknown>)[] = []
const children: ChildProcess[] = []
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function serve(db: { dataDir: string }, port: number) {
  const { app } = await buildApp({ dataDir: db.dataDir, logger: false, adminToken: ADMIN })
  await app.listen({ port, host: '127.0.0.1' })
  const addr = app.server.address()
  return { app, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}` }
}

const pkg = (n: number): PackageRow => ({ kind: 'package', manager: 'deb', name: `chatapp-${n}`, scope: 'system' })

describe.skipIf(process.platform !== 'linux')('agent offline for a simulated day', () => {
  it(
    `keeps the outbox within ${LIMIT} items, keeps enforcing, and drains the backlog in order exactly once`,
    async () => {
      const db = await makeDatabase('sqlite')
      cleanups.push(db.drop)
      let srv = await serve(db, 0)
      const port = Number(new URL(srv.url).port)
      cleanups.push(() => srv.app.close())
      const { secret } = await enrollDevices(srv.url, 'military', 0, 'offline')
      const push = await call(srv.url, 'POST', '/api/v1/admin/policies', {
        token: ADMIN,
        body: {
          policies: [
            {
              id: 'ban-telegram',
              title: 'Telegram banned',
              apps: [{ id: 'telegram', name: 'Telegram', match: { processNames: [BANNED] } }],
              assignments: { military: { actions: ['report', 'kill'] } },
            },
            {
              id: 'audit-chatapp',
              title: 'ChatApp audited',
              apps: [
                {
                  id: 'chatapp',
                  name: 'ChatApp',
                  match: { packages: { deb: Array.from({ length: CYCLES }, (_, i) => `chatapp-${i}`) } },
                },
              ],
              assignments: { military: { actions: ['report'] } },
            },
          ],
        },
      })
      expect(push.status, push.text).toBe(201)

      const dir = await mkdtemp(join(tmpdir(), 'interdict-offline-'))
      cleanups.push(() => rm(dir, { recursive: true, force: true }))
      await enroll({
        server: srv.url,
        secret,
        stateDir: dir,
        facts: { hardwareId: 'offline-hw', hostname: 'offline', os: 'linux' },
      })
      const config = await loadConfig(dir)
      const bin = join(dir, 'bin')
      await mkdir(bin)
      await copyFile('/bin/sleep', join(bin, BANNED))

      // The server goes down for the day.
      await srv.app.close()

      // The simulated day: from 23 h ago to 1 h ahead, so every report is within the server's accepted window and
      // the bundle (issued now) is inside the agent's ±1 day clock tolerance at every step.
      let now = Date.now() - 23 * 60 * MIN
      let cycle = 0
      const collector: Collector = {
        name: 'fake-packages',
        os: ['linux'],
        // A new finding at every scan; every 8th scan finds nothing (a clean report, dropped before any finding).
        collect: async () => (cycle % 8 === 7 ? [] : [pkg(cycle)]),
      }
      const d = new Daemon({
        stateDir: dir,
        clock: () => now,
        outbox: { maxItems: LIMIT },
        collectors: [collector],
        scanOnStart: false,
        waitSec: 1,
        flushCron: '* * * * * *',
        heartbeatCron: '0 0 1 1 *',
        scanCron: '0 0 1 1 *',
        reportBatchMs: 50,
      })
      cleanups.push(() => d.stop())
      await d.start()
      expect(d.bundle?.payload.apps.map((a) => a.id).sort()).toEqual(['chatapp', 'telegram'])

      let maxItems = 0
      let heartbeats = 0
      let killedPid = 0
      for (cycle = 0; cycle < CYCLES; cycle++) {
        await d.fullScan('schedule')
        maxItems = Math.max(maxItems, d.outbox.size.items)
        for (let t = 0; t < SCAN_MS; t += HEARTBEAT_MS) {
          now += HEARTBEAT_MS
          await d.heartbeat()
          heartbeats++
          maxItems = Math.max(maxItems, d.outbox.size.items)
        }
        if (cycle === WATCHER_CYCLE) {
          // Enforcement goes on offline: a real banned process is killed by the watcher.
          const p = spawn(join(bin, BANNED), ['60'], { stdio: 'ignore' })
          children.push(p)
          killedPid = p.pid!
          await until(() => p.exitCode !== null || p.signalCode !== null, 5000, 'the banned process to be killed')
          await until(
            async () => (await d.outbox.items()).some((i) => JSON.stringify(i.body).includes(`process:${killedPid}`)),
            5000,
            'the kill to be queued',
          )
        }
        expect(d.outbox.size.items).toBeLessThanOrEqual(LIMIT)
      }
      expect(maxItems).toBeLessThanOrEqual(LIMIT)
      expect(maxItems).toBe(LIMIT)
      const drops = d.outbox.dropRecord.total
      // Heartbeats replace each other (and go first when full); clean reports go before any finding; then the
      // oldest findings.
      expect(drops.report).toBeGreaterThanOrEqual(CYCLES / 8 - 1)
      expect(drops.finding).toBeGreaterThan(0)
      const queued = await d.outbox.items()
      const backlog = queued.filter((i) => i.route === REPORTS_ROUTE)
      expect(queued.filter((i) => i.kind === 'report').length, 'clean reports left while findings were dropped').toBe(
        queued.filter((i) => i.kind === 'report' && i.createdAt > queued.find((q) => q.kind === 'finding')!.createdAt)
          .length,
      )
      // What is left is the newest findings: a contiguous run of the last scans (skipping only the clean ones).
      const cycles = backlog
        .flatMap((i) => (i.body.findings as { subject: string }[]).map((f) => /chatapp-(\d+)$/.exec(f.subject)?.[1]))
        .filter((x): x is string => x !== undefined)
        .map(Number)
      const expected: number[] = []
      for (let c = CYCLES - 1; c >= 0 && expected.length < cycles.length; c--) if (c % 8 !== 7) expected.unshift(c)
      expect(cycles).toEqual(expected)
      expect(cycles).toContain(CYCLES - 2) // the newest finding (the last scan, 95, is a clean one)
      const watcherItem = backlog.find((i) => JSON.stringify(i.body).includes(`process:${killedPid}`))
      expect(watcherItem, 'the offline kill is still queued (a finding newer than the dropped ones)').toBeDefined()
      const actions = watcherItem!.body.actions as { action: string; result: string }[]
      expect(actions.some((a) => a.action === 'kill' && a.result === 'success')).toBe(true)
      expect(d.health().status).toMatch(/unreachable/)
      console.log(
        `[offline] simulated 24 h: ${CYCLES} scans, ${heartbeats} heartbeats, 1 real process killed offline; ` +
          `outbox max ${maxItems}/${LIMIT}; dropped ${drops.report} clean reports + ${drops.finding} oldest findings ` +
          `(and ${drops.heartbeat} heartbeats: only the latest is kept); backlog ${backlog.length} reports`,
      )

      // The server returns on the same address; the backoff runs out on the agent's clock.
      srv = await serve(db, port)
      now += 10 * MIN
      await until(() => d.outbox.size.items === 0, 20_000, 'the backlog to drain')

      const conn = new Database(join(db.dataDir, 'interdict.db'), { readonly: true })
      cleanups.push(async () => conn.close())
      const rows = conn
        .prepare('select report_id id, inventory from reports where device_id = ? order by rowid')
        .all(config.deviceId) as { id: string; inventory: string }[]
      const counts = new Map<string, number>()
      for (const r of rows) counts.set(r.id, (counts.get(r.id) ?? 0) + 1)
      const ids = backlog.map((i) => i.id)
      const lost = ids.filter((id) => counts.get(id) !== 1)
      expect(lost, 'every queued report stored exactly once').toEqual([])
      expect([...counts.values()].every((n) => n === 1)).toBe(true)
      // In order: the backlog's ids appear in the server's insertion order exactly as queued.
      const arrived = rows.map((r) => r.id).filter((id) => ids.includes(id))
      expect(arrived).toEqual(ids)
      // The drops are reported, not silent.
      const reportedDrops = rows
        .map((r) => JSON.parse(r.inventory) as Record<string, number>)
        .reduce((s, inv) => s + (inv['dropped.finding'] ?? 0) + (inv['dropped.report'] ?? 0), 0)
      expect(reportedDrops).toBeGreaterThan(0)
      // An agent that never saw the ack resends: answered duplicate, not stored twice.
      const again = await call(srv.url, 'POST', REPORTS_ROUTE, { token: config.deviceToken, body: backlog[0]!.body })
      expect(again.status).toBe(202)
      expect(again.body.duplicate).toBe(true)
      const stored = (
        conn.prepare('select count(*) n from reports where report_id = ?').get(backlog[0]!.id) as { n: number }
      ).n
      expect(stored).toBe(1)
      console.log(
        `[offline] server back: ${ids.length} queued reports delivered in order, lost 0, duplicates 0; ` +
          `drop counts reported to the server: ${reportedDrops}`,
      )
      await d.stop()
      await srv.app.close()
    },
    FULL ? 180_000 : 90_000,
  )
})
