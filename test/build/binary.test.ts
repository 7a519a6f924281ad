// CI smoke test of a real standalone binary: builds the linux-x64 agent (one target, ~15 s) and runs it: --version,
// --help, and a scan with a test policy that finds a running copy of /bin/sleep under a banned name. Runs only on
// linux-x64 where the pinned Node tarball can be had (npm cache or registry); otherwise it is skipped, saying why.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO, waitFor } from '../helpers.js'
import { startBanned } from '../actions/helpers.js'
import { ADMIN } from '../server/helpers.js'
import { runCtl, spawnServer } from '../server/process.js'
import { buildLinuxX64, cannotBuild } from './linux-x64.js'

const skip = await cannotBuild()
if (skip) process.stderr.write(`test/build/binary.test.ts skipped: ${skip}\n`)

describe.skipIf(skip !== undefined)('standalone agent binary (linux-x64)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'interdict-binary-'))
  const bin = join(dir, 'interdict-agent-linux-x64')
  const tag = randomBytes(4).toString('hex')
  const banned = `interdict-smoke-${tag}`
  let child: ChildProcess | undefined

  beforeAll(() => {
    buildLinuxX64('agent', dir)
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}interdict-agent-linux-x64\n$/)
  }, 180_000)
  afterAll(() => {
    if (child?.pid) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  const run = (args: string[]) => spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000, cwd: dir })

  it('prints its version', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
    const res = run(['--version'])
    expect(res.stderr).toBe('')
    expect(res.stdout.trim()).toBe(pkg.version)
  })

  it('prints help with its commands', () => {
    const res = run(['--help'])
    expect(res.status).toBe(0)
    expect(res.stdout).toContain('scan')
    expect(res.stdout).toContain('install-service')
  })

  it('finds a banned process with a test policy', async () => {
    const copy = join(dir, banned)
    copyFileSync('/bin/sleep', copy)
    chmodSync(copy, 0o755)
    child = spawn(copy, ['60'], { stdio: 'ignore' })
    const pid = child.pid as number
    await waitFor(() => existsSync(`/proc/${pid}/exe`) || undefined)
    const policy = join(dir, 'policy.yaml')
    writeFileSync(
      policy,
      [
        'id: smoke-ban',
        'title: Smoke test ban',
        'apps:',
        '  - id: smoke',
        '    name: Smoke test app',
        '    match:',
        `      processNames: [${banned}]`,
        'assignments:',
        '  standard: { actions: [report] }',
        '',
      ].join('\n'),
    )
    const res = run(['scan', '--json', '--policy', policy])
    expect(res.status, res.stderr).toBe(1)
    const out = JSON.parse(res.stdout) as { findings: { appId: string; evidence: { pid?: number } }[] }
    expect(out.findings.map((f) => [f.appId, f.evidence.pid])).toContainEqual(['smoke', pid])
  })

  // The daemon path of the binary: its bundled axios (without the web globals) and node-cron (UTC, without ICU).
  it('enrolls with a real server, runs as a daemon, kills a banned process that starts and reports it', async () => {
    const server = await spawnServer(['--data-dir', join(dir, 'server')], { INTERDICT_ADMIN_TOKEN: ADMIN })
    let daemon: ChildProcess | undefined
    try {
      const ctl = async (...args: string[]) => {
        const r = await runCtl(args, { INTERDICT_SERVER: server.url, INTERDICT_TOKEN: ADMIN })
        expect(r.code, r.stderr).toBe(0)
        return r.stdout
      }
      const policy = join(dir, 'daemon-policy.yaml')
      writeFileSync(
        policy,
        `id: daemon-ban\ntitle: Daemon ban\napps:\n  - id: daemon-smoke\n    name: Daemon smoke\n    match:\n` +
          `      processNames: [${banned}-d]\nassignments:\n  military: { actions: [report, kill] }\n`,
      )
      await ctl('class', 'create', 'military')
      await ctl('policy', 'push', policy)
      const { secret } = JSON.parse(await ctl('enroll-secret', 'create', '--class', 'military', '--json')) as {
        secret: string
      }
      const state = join(dir, 'agent-state')
      const enrolled = run(['enroll', '--server', server.url, '--secret', secret, '--state-dir', state])
      expect(enrolled.status, enrolled.stderr).toBe(0)
      daemon = spawn(bin, ['run', '--state-dir', state], { stdio: 'ignore' })
      await waitFor(() => existsSync(join(state, 'status.json')) || undefined, 15_000)

      const victim = startBanned(dir, `${banned}-d`)
      const died = new Promise<string | null>((resolve) => victim.once('exit', (_code, signal) => resolve(signal)))
      // Killed by the agent: TERM first, KILL if it does not go.
      expect(['SIGTERM', 'SIGKILL']).toContain(await died)
      const findings = await waitFor(async () => {
        const out = await ctl('findings', '--app', 'daemon-smoke', '--format', 'json')
        // The finding may arrive in one report and its kill (verified dead) in the next.
        return out.includes('daemon-smoke') && out.includes('"kill"') ? out : undefined
      }, 15_000)
      expect(findings).toContain('"kill"')

      daemon.kill('SIGTERM')
      const code = await new Promise((resolve) => daemon?.once('exit', (c) => resolve(c)))
      expect(code).toBe(0)
    } finally {
      if (daemon?.exitCode === null) daemon.kill('SIGKILL')
      await server.stop()
    }
  }, 90_000)

  it('scans with its embedded catalogue', () => {
    const res = run(['scan', '--json'])
    expect([0, 1]).toContain(res.status)
    const out = JSON.parse(res.stdout) as { class: string }
    expect(out.class).toBe('standard')
  })
})
