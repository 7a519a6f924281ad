// The whole product in one run, every part real: interdict-server (SQLite), interdictctl pushing policy, an agent
// enrolled with `interdict-agent enroll` and running as `interdict-agent run`, real banned processes killed.
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, chmodSync, copyFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCtl, spawnServer, type ServerProcess } from '../server/process.js'
import { isAlive, killQuietly, REPO, runCli, tempDir, waitFor } from '../helpers.js'

const ADMIN = `idt_adm_e2e_${randomBytes(12).toString('hex')}`
const tag = randomBytes(3).toString('hex')
const BANNED = `chatapp-${tag}`

function policy(actions: string) {
  return [
    'id: ban-chatapp',
    'title: Chat app banned',
    'apps:',
    '  - id: chatapp',
    '    name: Chat app',
    '    match:',
    `      processNames: [${BANNED}]`,
    'assignments:',
    `  military: { actions: [${actions}] }`,
    '',
  ].join('\n')
}

// Each step spawns real CLIs (a TypeScript start each): generous timeouts so a loaded CI machine does not flake.
describe('server + interdictctl + agent daemon (end to end)', { timeout: 120_000 }, () => {
  const dir = tempDir('interdict-e2e-')
  const children: ChildProcess[] = []
  let server: ServerProcess
  let agent: ChildProcess
  let env: Record<string, string>
  let deviceId = ''
  const exe = join(dir.path, BANNED)
  const lookalike = join(dir.path, `${BANNED}-notes`)
  const policyFile = join(dir.path, 'policy.yaml')

  function startBinary(path: string) {
    const child = spawn(path, ['300'], { stdio: 'ignore' })
    children.push(child)
    return child
  }
  async function deviceStatus() {
    const res = await runCtl(['devices', '--json'], env)
    expect(res.code, res.stderr).toBe(0)
    const { devices } = JSON.parse(res.stdout) as { devices: { id: string; status: string }[] }
    return devices.find((d) => d.id === deviceId)?.status
  }

  beforeAll(async () => {
    for (const [path, tail] of [
      [exe, 'a'],
      [lookalike, 'b'],
    ] as const) {
      copyFileSync('/bin/sleep', path)
      appendFileSync(path, tail)
      chmodSync(path, 0o755)
    }
    server = await spawnServer(['--data-dir', join(dir.path, 'server')], { INTERDICT_ADMIN_TOKEN: ADMIN })
    env = { INTERDICT_SERVER: server.url, INTERDICT_TOKEN: ADMIN }
  })
  afterAll(async () => {
    killQuietly(agent)
    for (const c of children) killQuietly(c)
    await server?.stop()
    dir.cleanup()
  })

  it('enrolls an agent with a class secret and delivers the audit policy', async () => {
    writeFileSync(policyFile, policy('report'))
    expect((await runCtl(['class', 'create', 'military'], env)).code).toBe(0)
    const push = await runCtl(['policy', 'push', policyFile], env)
    expect(push.code, push.stderr).toBe(0)
    const s = await runCtl(['enroll-secret', 'create', '--class', 'military'], env)
    const secret = /idt_enr_\S+/.exec(s.stdout)![0]
    const stateDir = join(dir.path, 'agent')
    const enrolled = await runCli('interdict-agent', [
      'enroll',
      '--server',
      server.url,
      '--secret',
      secret,
      '--state-dir',
      stateDir,
      '--json',
    ])
    expect(enrolled.code, enrolled.stderr).toBe(0)
    const info = JSON.parse(enrolled.stdout) as { deviceId: string; class: string }
    expect(info.class).toBe('military')
    deviceId = info.deviceId
    agent = spawn(process.execPath, [join(REPO, 'bin/interdict-agent.js'), 'run', '--state-dir', stateDir], {
      stdio: ['ignore', 'ignore', 'ignore'],
    })
    children.push(agent)
    // Audit only: a banned process is reported and left running.
    const running = startBinary(exe)
    await waitFor(async () => ((await deviceStatus()) === 'noncompliant' ? true : undefined), 60_000, 250)
    expect(isAlive(running.pid!)).toBe(true)
  })

  it('a push from audit to enforce kills the running banned process on arrival; the device becomes remediated', async () => {
    const running = children[children.length - 1]!
    const lookalikeProc = startBinary(lookalike)
    writeFileSync(policyFile, policy('report, kill'))
    const t0 = Date.now()
    expect((await runCtl(['policy', 'push', policyFile], env)).code).toBe(0)
    await waitFor(() => (running.exitCode !== null || running.signalCode !== null ? true : undefined), 10_000)
    const pushToKill = Date.now() - t0
    expect(pushToKill).toBeLessThan(10_000)
    await waitFor(async () => ((await deviceStatus()) === 'remediated' ? true : undefined), 60_000, 250)
    expect(isAlive(lookalikeProc.pid!)).toBe(true)
  })

  it('a newly started banned process is killed within a second and the kill is reported', async () => {
    const t0 = Date.now()
    const p = startBinary(exe)
    await waitFor(() => (p.exitCode !== null || p.signalCode !== null ? true : undefined), 5_000, 10)
    // Target is under a second (bench/kill-latency measures p95 ~235 ms); slack here for a loaded CI machine.
    expect(Date.now() - t0).toBeLessThan(1_500)
    const f = await waitFor(
      async () => {
        const res = await runCtl(['findings', '--app', 'chatapp', '--format', 'json'], env)
        return res.stdout.includes(String(p.pid)) ? res.stdout : undefined
      },
      15_000,
      250,
    )
    expect(f).toContain('kill')
  })
})
