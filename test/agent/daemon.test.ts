import { type ChildProcess, spawn } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { processesCollector } from '../../agent/collectors/processes.js'
import { Daemon, type DaemonOptions } from '../../agent/daemon.js'
import { enroll } from '../../agent/sync/enroll.js'
import { FakeServer, BANNED_NAME, telegramPolicy } from './fake-server.js'

const facts = { hardwareId: 'hw-1', hostname: 'test-host', os: 'linux test' }
let bin: string
const children: ChildProcess[] = []
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), 'interdict-daemon-bin-'))
  await copyFile('/bin/sleep', join(bin, BANNED_NAME))
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
  for (const c of children.splice(0)) c.kill('SIGKILL')
})
afterAll(async () => {
  await rm(bin, { recursive: true, force: true })
})

function start(): ChildProcess {
  const c = spawn(join(bin, BANNED_NAME), ['60'], { stdio: 'ignore' })
  children.push(c)
  return c
}
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function setup() {
  const server = new FakeServer()
  await server.start()
  const dir = await mkdtemp(join(tmpdir(), 'interdict-daemon-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  cleanups.push(() => server.stop())
  const daemon = (opts: { waitSec?: number; network?: DaemonOptions['network'] } = {}) => {
    const d = new Daemon({
      ...(opts.network ? { network: opts.network } : {}),
      stateDir: dir,
      collectors: [processesCollector],
      waitSec: opts.waitSec ?? 5,
      flushCron: '* * * * * *',
      heartbeatCron: '*/2 * * * * *',
      scanCron: '0 0 1 1 *',
      reportBatchMs: 100,
    })
    cleanups.push(() => d.stop())
    return d
  }
  return { server, dir, daemon }
}

const findingsFor = (r: Record<string, unknown>) => (r.findings as { appId: string; subject: string }[]) ?? []
const actionsOf = (r: Record<string, unknown>) => (r.actions as { action: string; result: string }[]) ?? []

describe.skipIf(process.platform !== 'linux')('daemon', () => {
  it('audits under a report-only bundle, then kills the running process as soon as an enforcing bundle arrives', async () => {
    const { server, dir, daemon } = await setup()
    server.push([telegramPolicy(['report'])], 'military', 1)
    await enroll({ server: server.url, secret: 's3cret', stateDir: dir, facts })
    const banned = start()
    await new Promise((r) => setTimeout(r, 100))
    const d = daemon()
    await d.start()
    // Start-up full scan: reported, not killed (report-only never changes anything).
    await until(() => server.reports().some((r) => findingsFor(r).some((f) => f.subject === `process:${banned.pid}`)))
    await new Promise((r) => setTimeout(r, 500))
    expect(alive(banned)).toBe(true)
    const audit = server.reports().find((r) => findingsFor(r).length > 0)!
    expect(actionsOf(audit)).toEqual([])
    expect(audit.bundleVersion).toBe(1)
    // Push to enforce: killed on policy arrival (no new process needed).
    const t0 = Date.now()
    server.push([telegramPolicy(['report', 'kill'])], 'military', 2)
    await until(() => !alive(banned), 5000)
    expect(Date.now() - t0).toBeLessThan(3000)
    await until(() =>
      server.reports().some((r) => actionsOf(r).some((a) => a.action === 'kill' && a.result === 'success')),
    )
    // Heartbeats carry the bundle version and health.
    await until(() => server.received.some((r) => r.route === '/api/v1/heartbeat' && r.body.bundleVersion === 2), 5000)
    const hb = server.received.filter((r) => r.route === '/api/v1/heartbeat').at(-1)!.body
    expect(hb.health).toMatchObject({ 'bundle.version': 2, class: 'military' })
    // A new launch is killed by the watcher and reported.
    const again = start()
    const t1 = Date.now()
    await until(() => !alive(again), 2000)
    expect(Date.now() - t1).toBeLessThan(1000)
    await until(() =>
      server
        .reports()
        .some((r) => findingsFor(r).some((f) => f.subject === `process:${again.pid}`) && actionsOf(r).length > 0),
    )
  })

  it('offline: keeps enforcing the last good bundle across a restart, queues reports, delivers each once on return', async () => {
    const { server, dir, daemon } = await setup()
    server.push([telegramPolicy(['report', 'kill'])], 'military', 1)
    await enroll({ server: server.url, secret: 's3cret', stateDir: dir, facts })
    const port = server.port
    await server.stop()
    const d = daemon({ waitSec: 1 })
    await d.start()
    expect(d.bundle?.payload.version).toBe(1)
    const p1 = start()
    await until(() => !alive(p1), 2000)
    await d.stop()
    // Restart, still offline: the bundle on disk is re-verified and enforced.
    const d2 = daemon({ waitSec: 1 })
    await d2.start()
    const p2 = start()
    await until(() => !alive(p2), 2000)
    await new Promise((r) => setTimeout(r, 300))
    expect(d2.outbox.size.items).toBeGreaterThanOrEqual(2)
    expect(d2.health().status).toMatch(/unreachable|ok/)
    await server.start(port)
    await until(() => d2.outbox.size.items === 0, 15_000)
    const killed = server
      .reports()
      .flatMap(findingsFor)
      .map((f) => f.subject)
    expect(killed).toContain(`process:${p1.pid}`)
    expect(killed).toContain(`process:${p2.pid}`)
    expect(server.duplicates).toBe(0)
    // Delivered in the order they were created.
    const times = server.reports().map((r) => Date.parse(r.scannedAt as string))
    expect([...times].sort((a, b) => a - b)).toEqual(times)
  })

  it('reports a rejected bundle and keeps enforcing the last good one', async () => {
    const { server, dir, daemon } = await setup()
    server.push([telegramPolicy(['report', 'kill'])], 'military', 5)
    await enroll({ server: server.url, secret: 's3cret', stateDir: dir, facts })
    const d = daemon()
    await d.start()
    server.push([telegramPolicy(['report'])], 'military', 4) // rollback
    await until(() =>
      server.reports().some((r) => (r.inventory as Record<string, unknown>)['rejected.reason'] === 'rollback'),
    )
    expect(d.bundle?.payload.version).toBe(5)
    expect(d.health()['policy.rejected']).toMatch(/rollback/)
    const p = start()
    await until(() => !alive(p), 2000)
  })

  it('follows the policy with the network block: added on push, removed when the policy drops it', async () => {
    const { server, dir, daemon } = await setup()
    const hostsPath = join(dir, 'hosts')
    await writeFile(hostsPath, '127.0.0.1 localhost\n')
    const commands: string[] = []
    const network = {
      hostsPath,
      kind: 'nftables' as const,
      runner: async (cmd: string, args: readonly string[], o: { input?: string } = {}) => {
        commands.push(`${cmd} ${args.join(' ')}\n${o.input ?? ''}`)
        return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false }
      },
    }
    const withNet = telegramPolicy(['report', 'block-network'])
    const app = withNet.apps[0] as { match: Record<string, unknown> }
    app.match.network = { domains: ['telegram.org'], cidrs: ['149.154.160.0/20'] }
    server.push([withNet], 'military', 1)
    await enroll({ server: server.url, secret: 's3cret', stateDir: dir, facts })
    const d = daemon({ network })
    await d.start()
    await until(() => commands.length === 1)
    expect(await readFile(hostsPath, 'utf8')).toMatch(/# BEGIN interdict[\s\S]*0\.0\.0\.0 telegram\.org/)
    expect(commands[0]).toContain('149.154.160.0/20')
    // The same policy again (new version, same rules): nothing is re-applied.
    server.push([withNet], 'military', 2)
    await until(() => d.bundle?.payload.version === 2)
    await new Promise((r) => setTimeout(r, 200))
    expect(commands).toHaveLength(1)
    // The policy stops asking: hosts block and firewall set are removed, the rest of the hosts file is kept.
    server.push([telegramPolicy(['report', 'kill'])], 'military', 3)
    await until(() => commands.length === 2)
    expect(await readFile(hostsPath, 'utf8')).toBe('127.0.0.1 localhost\n')
    expect(commands[1]).not.toContain('149.154.160.0/20')
    expect(d.health()['network.error']).toBeUndefined()
  })
})
