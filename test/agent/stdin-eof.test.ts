// `interdict-agent run --stop-on-stdin-eof`: the Windows service host stops the agent by closing its stdin. The real
// CLI against the fake server: a finding still in the report batch when stdin closes is delivered before exit 0.
import { type ChildProcess, spawn } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { enroll } from '../../agent/sync/enroll.js'
import { FakeServer, BANNED_NAME, telegramPolicy } from './fake-server.js'

const cli = new URL('../../bin/interdict-agent.js', import.meta.url).pathname
const facts = { hardwareId: 'hw-eof', hostname: 'test-host', os: 'linux test' }
let bin: string
const children: ChildProcess[] = []
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), 'interdict-eof-bin-'))
  await copyFile('/bin/sleep', join(bin, BANNED_NAME))
})
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL')
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})
afterAll(() => rm(bin, { recursive: true, force: true }))

async function until(cond: () => boolean, ms: number, what: () => string) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** An enrolled state dir (report-only policy: nothing is killed) and the agent CLI running on it. */
async function startAgent(flags: string[]) {
  const server = new FakeServer()
  await server.start()
  cleanups.push(() => server.stop())
  server.push([telegramPolicy(['report'])], 'military', 1)
  const dir = await mkdtemp(join(tmpdir(), 'interdict-eof-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  await enroll({ server: server.url, secret: 's3cret', stateDir: dir, facts })
  const { INTERDICT_LOG_LEVEL: _, ...env } = process.env // --verbose decides the level
  const agent = spawn(process.execPath, [cli, 'run', '--state-dir', dir, '--verbose', ...flags], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...env, INTERDICT_STATE_DIR: '' },
  })
  children.push(agent)
  let log = ''
  agent.stderr?.setEncoding('utf8').on('data', (d: string) => {
    log += d
  })
  const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)))
  await until(
    () => log.includes('"agent running"'),
    15_000,
    () => `the agent to start; stderr:\n${log}`,
  )
  return { server, dir, agent, exited, log: () => log }
}

describe.skipIf(process.platform !== 'linux')('run --stop-on-stdin-eof', () => {
  it('stops gracefully when stdin closes: exit 0, the pending finding delivered, status written', async () => {
    const { server, dir, agent, exited, log } = await startAgent(['--stop-on-stdin-eof'])
    const banned = spawn(join(bin, BANNED_NAME), ['60'], { stdio: 'ignore' })
    children.push(banned)
    // The watcher saw it; its finding waits in the report batch (sent after 1 s) when stdin closes right now.
    await until(
      () => log().includes('"banned process started"'),
      10_000,
      () => `the watcher finding; stderr:\n${log()}`,
    )
    const t0 = Date.now()
    agent.stdin?.end()
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 8000))])
    expect(code, log()).toBe(0)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(log()).toContain('"signal":"stdin-eof"')
    const subjects = server.reports().flatMap((r) => (r.findings as { subject: string }[]) ?? [])
    expect(subjects.map((f) => f.subject)).toContain(`process:${banned.pid}`)
    expect(banned.exitCode).toBeNull() // report-only: audited, not killed
    const status = JSON.parse(await readFile(join(dir, 'status.json'), 'utf8'))
    expect(status.outbox.items).toBe(0)
    expect(Date.parse(status.updatedAt)).toBeGreaterThanOrEqual(t0)
  }, 30_000)

  it('without the flag a closed stdin is ignored (systemd and launchd give services /dev/null)', async () => {
    const { agent, exited, log } = await startAgent([])
    agent.stdin?.end()
    await new Promise((r) => setTimeout(r, 1000))
    expect(agent.exitCode, log()).toBeNull()
    agent.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 30_000)
})
