// `interdict-agent scan` end to end: real processes started from copies of a harmless binary, found by name, hash and
// binary marker through the real CLI; lookalikes started beside them are never reported.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, appendFileSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killQuietly, runCli, tempDir, waitFor } from '../helpers.js'

const SLEEP = '/bin/sleep'

describe('interdict-agent scan (real processes)', () => {
  const dir = tempDir('interdict-scan-')
  const children: ChildProcess[] = []
  const tag = randomBytes(4).toString('hex')
  const marker = `INTERDICT-TEST-MARKER-${randomBytes(8).toString('hex')}`
  const names = { banned: `banned-app-${tag}`, hashed: `innocent-h-${tag}`, marked: `innocent-m-${tag}` }
  let policyFile = ''
  const pids: Record<string, number> = {}

  /** A runnable copy of sleep with extra bytes appended (ELF ignores trailing data), so each copy hashes uniquely. */
  function copy(name: string, tail: Buffer | string) {
    const path = join(dir.path, name)
    copyFileSync(SLEEP, path)
    appendFileSync(path, tail)
    chmodSync(path, 0o755)
    return path
  }
  function start(cmd: string, args: string[], key: string) {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'] })
    children.push(child)
    pids[key] = child.pid!
    return child
  }

  beforeAll(async () => {
    const banned = copy(names.banned, randomBytes(16))
    const hashed = copy(names.hashed, randomBytes(16))
    const marked = copy(names.marked, `\n${marker}\n`)
    const lookalike = copy(`${names.banned}-notes`, randomBytes(16))
    const sha = createHash('sha256').update(readFileSync(hashed)).digest('hex')
    mkdirSync(join(dir.path, 'scripts'))
    const script = join(dir.path, 'scripts', `${names.banned.replace(/-/g, '_')}_bot.py`)
    writeFileSync(script, 'import time\ntime.sleep(60)\n')
    policyFile = join(dir.path, 'policy.yaml')
    writeFileSync(
      policyFile,
      [
        'id: test-ban',
        'title: Test ban',
        'apps:',
        '  - id: banned',
        '    name: Banned test app',
        '    match:',
        `      processNames: [${names.banned}]`,
        `      sha256: [${sha}]`,
        `      binaryMarkers: ['hex:${Buffer.from(marker).toString('hex')}']`,
        'assignments:',
        '  military: { actions: [report, kill] }',
        '',
      ].join('\n'),
    )
    start(banned, ['60'], 'banned')
    start(hashed, ['60'], 'hashed')
    start(marked, ['60'], 'marked')
    start(lookalike, ['60'], 'lookalike')
    start('grep', [names.banned], 'grep')
    start('python3', [script], 'script')
    await waitFor(
      () => Object.values(pids).every((pid) => readFileSync(`/proc/${pid}/cmdline`).length > 0) || undefined,
    )
  })
  afterAll(() => {
    for (const c of children) killQuietly(c)
    dir.cleanup()
  })

  it('finds each banned copy by its strongest signal, and no lookalike', async () => {
    const res = await runCli('interdict-agent', ['scan', '--policy', policyFile, '--class', 'military', '--json'])
    expect(res.code, res.stderr).toBe(1)
    const out = JSON.parse(res.stdout) as {
      findings: {
        signal: string
        subject: string
        actions: string[]
        evidence: { pid: number; exe: string; sha256?: string }
      }[]
      collectors: { name: string; error?: string }[]
    }
    const found = new Map(out.findings.map((f) => [f.evidence.pid, f]))
    expect(found.get(pids.banned!)).toMatchObject({ signal: 'process-name', actions: ['report', 'kill'] })
    expect(found.get(pids.hashed!)).toMatchObject({ signal: 'sha256' })
    expect(found.get(pids.marked!)).toMatchObject({ signal: 'binary-marker' })
    expect(found.get(pids.banned!)!.evidence.exe).toBe(join(dir.path, names.banned))
    for (const key of ['lookalike', 'grep', 'script']) expect(found.has(pids[key]!), key).toBe(false)
    expect(out.findings.filter((f) => f.subject.startsWith('process:'))).toHaveLength(3)
  })

  it('prints a human table and exits 0 when nothing is banned', async () => {
    const clean = join(dir.path, 'clean.yaml')
    writeFileSync(
      clean,
      'id: clean\ntitle: Clean\napps:\n  - id: nothing\n    name: Nothing\n    match: { processNames: [no-such-app-xyz] }\n' +
        'assignments:\n  standard: { actions: [report] }\n',
    )
    const res = await runCli('interdict-agent', ['scan', '--policy', clean])
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toMatch(/No banned apps found/)
  })

  it('exits 2 with file, line and field for a broken policy', async () => {
    const bad = join(dir.path, 'bad.yaml')
    writeFileSync(
      bad,
      'id: bad\ntitle: Bad\napps:\n  - id: a\n    name: A\n    match: { processNames: [bash] }\nassignments: {}\n',
    )
    const res = await runCli('interdict-agent', ['scan', '--policy', bad])
    expect(res.code).toBe(2)
    expect(res.stderr).toContain(`${bad}:6`)
    expect(res.stderr).toContain('/apps/0/match/processNames/0')
  })

  it('has --help', async () => {
    const res = await runCli('interdict-agent', ['scan', '--help'])
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/--policy/)
  })
})
