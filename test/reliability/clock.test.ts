// Reliability: clock skew between agent and server. Within ±1 day everything works (bundles accepted, reports
// stored, no warning); beyond it the agent says so loudly: `clockSkewSec` and a warning in the heartbeat health,
// `interdict-agent status`, and the server's device detail. The agent's clock is injected (the daemon's `clock`),
// the server is real (SQLite) and measures nothing itself: the agent derives the skew from HTTP `Date` headers.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { collectStatus } from '../../agent/commands/status.js'
import type { Collector } from '../../agent/collectors/types.js'
import { Daemon } from '../../agent/daemon.js'
import { SKEW_WARN_SEC, skewFromDate, skewWarning } from '../../agent/sync/clock.js'
import { loadConfig } from '../../agent/sync/config.js'
import { enroll } from '../../agent/sync/enroll.js'
import { verifyStored } from '../../agent/sync/policy-store.js'
import { compileBundle } from '../../policies/compile.js'
import type { PolicyFile } from '../../policies/schema.js'
import { generateSigningKey, signBundle } from '../../policies/sign.js'
import { runCli } from '../helpers.js'
import { ADMIN, call, enrollDevices, makeDatabase, startServer, type TestServer } from '../server/helpers.js'

const H = 3600_000

describe('clock skew (pure)', () => {
  it('computes the skew from a Date header and warns only past one day', () => {
    const server = Date.parse('2030-01-01T00:00:00Z')
    const date = new Date(server).toUTCString()
    expect(skewFromDate(date, server + 500)).toBe(0)
    expect(skewFromDate(date, server + 3 * H + 500)).toBe(3 * 3600)
    expect(skewFromDate(date, server - 2 * 24 * H + 500)).toBe(-2 * 86_400)
    expect(skewFromDate(undefined, server)).toBeUndefined()
    expect(skewFromDate('not a date', server)).toBeUndefined()
    expect(skewWarning(SKEW_WARN_SEC)).toBeUndefined()
    expect(skewWarning(-SKEW_WARN_SEC)).toBeUndefined()
    expect(skewWarning(undefined)).toBeUndefined()
    expect(skewWarning(SKEW_WARN_SEC + 3600)).toMatch(/25\.0 hours ahead/)
    expect(skewWarning(-3 * 86_400)).toMatch(/3\.0 days behind/)
  })

  it('keeps enforcing the stored bundle when the clock jumps back past its issue time; a bad one is still refused', () => {
    const key = generateSigningKey()
    const issued = new Date('2030-06-01T00:00:00Z')
    const signed = signBundle(
      compileBundle([policy(1) as PolicyFile], 'military', { version: 3, now: issued }),
      key.privateKeyPem,
    )
    const expect_ = { publicKeyPem: key.publicKeyPem, class: 'military' }
    const back = new Date(issued.getTime() - 400 * 24 * H) // RTC battery died: a year back
    const r = verifyStored(signed, expect_, 3, back)
    expect('payload' in r && r.payload.version).toBe(3)
    expect(verifyStored(signed, expect_, 4, back)).toMatchObject({ reason: 'rollback' })
    expect(verifyStored(signed, { ...expect_, class: 'standard' }, 0, back)).toMatchObject({ reason: 'class' })
    const tampered = { ...signed, payload: { ...signed.payload, version: 9 } }
    expect(verifyStored(tampered, expect_, 0, back)).toMatchObject({ reason: 'signature' })
  })
})

const cleanups: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

const policy = (v: number) => ({
  id: 'audit-chatapp',
  title: `ChatApp audited v${v}`,
  apps: [{ id: 'chatapp', name: 'ChatApp', match: { packages: { deb: ['chatapp', `chatapp-v${v}`] } } }],
  assignments: { military: { actions: ['report'] } },
})

const collector: Collector = {
  name: 'fake-packages',
  os: ['linux', 'darwin', 'win32'],
  collect: async () => [{ kind: 'package', manager: 'deb', name: 'chatapp', scope: 'system' }],
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('clock skew between agent and server (real server)', () => {
  let srv: TestServer
  let secret: string
  let version = 1

  async function push() {
    version++
    const r = await call(srv.url, 'POST', '/api/v1/admin/policies', {
      token: ADMIN,
      body: { policies: [policy(version)] },
    })
    expect(r.status, r.text).toBe(201)
    return srv.ctx.policy.get('military')!.version
  }

  async function agent(skewMs: number) {
    const dir = await mkdtemp(join(tmpdir(), 'interdict-clock-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    await enroll({
      server: srv.url,
      secret,
      stateDir: dir,
      facts: { hardwareId: `clock-${skewMs}`, hostname: `skew-${skewMs / H}h`, os: 'linux' },
    })
    const d = new Daemon({
      stateDir: dir,
      clock: () => Date.now() + skewMs,
      collectors: [collector],
      waitSec: 2,
      flushCron: '* * * * * *',
      heartbeatCron: '0 0 1 1 *',
      scanCron: '0 0 1 1 *',
      scanOnStart: false,
    })
    cleanups.push(() => d.stop())
    await d.start()
    await until(() => d.skew.sec !== undefined, 5000, 'a skew measurement')
    return { d, dir, config: await loadConfig(dir) }
  }

  async function detail(deviceId: string) {
    return (await call(srv.url, 'GET', `/api/v1/admin/devices/${deviceId}`, { token: ADMIN })).body
  }

  it('sets up a server with a class and a bundle', async () => {
    const db = await makeDatabase('sqlite')
    cleanups.push(db.drop)
    srv = await startServer(db)
    cleanups.push(srv.close)
    secret = (await enrollDevices(srv.url, 'military', 0, 'clock')).secret
    await push()
  })

  it.each([
    ['23 h ahead', 23 * H],
    ['23 h behind', -23 * H],
  ])('within a day (%s): new bundles accepted, reports stored, no warning', async (_, skew) => {
    const { d, config } = await agent(skew)
    expect(Math.abs(d.skew.sec! - skew / 1000)).toBeLessThanOrEqual(2)
    const v = await push()
    await until(() => d.bundle?.payload.version === v, 10_000, `bundle v${v} accepted`)
    await d.fullScan('test')
    await until(() => d.outbox.size.items === 0, 10_000, 'report delivered')
    await d.heartbeat()
    expect(d.health().status).toBe('ok')
    expect(d.health()['clock.warning']).toBeUndefined()
    const dev = await detail(config.deviceId)
    expect(dev.recentReports.length).toBeGreaterThan(0)
    expect(dev.outbox).toBeUndefined()
    expect(Math.abs(dev.clockSkewSec - skew / 1000)).toBeLessThanOrEqual(2)
    expect(dev.clockWarning).toBeUndefined()
    expect(d.outbox.dropRecord.dead).toBe(0)
    await d.stop()
  })

  it('two days ahead: warns in health, status and device detail; reports still stored (dated on server time)', async () => {
    const skew = 48 * H
    const { d, dir, config } = await agent(skew)
    const v = await push()
    await until(() => d.bundle?.payload.version === v, 10_000, `bundle v${v} accepted`)
    await d.fullScan('test')
    await until(() => d.outbox.size.items === 0, 10_000, 'report delivered')
    expect(d.outbox.dropRecord.dead).toBe(0)
    await d.heartbeat()
    expect(d.health().status).toMatch(/^warning: clock is 2\.0 days ahead of the server/)
    expect(d.health().clockSkewSec).toBeGreaterThan(SKEW_WARN_SEC)
    const dev = await detail(config.deviceId)
    expect(dev.clockWarning).toMatch(/2\.0 days ahead/)
    expect(dev.health.clockSkewSec).toBeGreaterThan(SKEW_WARN_SEC)
    // The report is filed at the server's time, not two days in the future.
    expect(Math.abs(Date.parse(dev.recentReports[0].scannedAt) - Date.now())).toBeLessThan(60_000)
    const s = await collectStatus(dir)
    expect(s.clockWarning).toMatch(/ahead of the server/)
    const cli = await runCli('interdict-agent', ['status', '--state-dir', dir])
    expect(cli.stdout).toMatch(/WARNING: +clock is 2\.0 days ahead of the server/)
    await d.stop()
  })

  it('two days behind: the new bundle is refused as not yet valid (last good kept), and the warning says why', async () => {
    const skew = -48 * H
    const { d, config } = await agent(skew)
    const before = d.bundle?.payload.version
    await push()
    await until(() => /not-yet-valid/.test(String(d.health()['policy.rejected'])), 10_000, 'the rejection')
    expect(d.bundle?.payload.version).toBe(before)
    // Clock first: it is the cause of the rejection.
    expect(d.health().status).toMatch(/^warning: clock is 2\.0 days behind the server/)
    await d.heartbeat()
    const dev = await detail(config.deviceId)
    expect(dev.clockWarning).toMatch(/2\.0 days behind/)
    await d.stop()
  })
})
