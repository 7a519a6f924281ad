import { type ChildProcess, spawn } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultEnforcer } from '../../agent/sync/enforcer.js'
import { PidDiff, ProcessWatcher, parseLastPid } from '../../agent/watcher.js'
import { compileBundle } from '../../policies/compile.js'
import { compileMatcher, type Finding } from '../../policies/match.js'
import { BANNED_NAME, telegramPolicy } from './fake-server.js'

const linux = process.platform === 'linux'
let dir: string
const children: ChildProcess[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'interdict-watch-'))
  await copyFile('/bin/sleep', join(dir, BANNED_NAME))
  await copyFile('/bin/sleep', join(dir, `${BANNED_NAME}-notes`))
})
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

function start(name: string): ChildProcess {
  const c = spawn(join(dir, name), ['30'], { stdio: 'ignore' })
  children.push(c)
  return c
}

const exited = (c: ChildProcess) =>
  new Promise<number>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) resolve(Date.now())
    else c.once('exit', () => resolve(Date.now()))
  })

describe('pid diff', () => {
  it('reports only new pids and forgets exited ones', () => {
    const d = new PidDiff()
    expect([...d.update(['1', '2', 'self', '30'])]).toEqual([1, 2, 30])
    expect([...d.update(['1', '2', '30', '31', 'net'])]).toEqual([31])
    expect([...d.update(['1', '31'])]).toEqual([])
    expect([...d.gone].sort()).toEqual([2, 30])
    expect([...d.update(['1', '31', '2'])]).toEqual([2])
  })

  it('parses the last pid of /proc/loadavg', () => {
    const b = Buffer.from('0.39 0.31 0.29 1/152 24637\n')
    expect(parseLastPid(b, b.length)).toBe(24637)
  })
})

describe.skipIf(!linux)('watcher (real processes)', () => {
  it('kills a banned process within a second of its start and leaves a lookalike alone', async () => {
    const bundle = compileBundle([telegramPolicy(['report', 'kill'])], 'military', { version: 1 })
    const matcher = compileMatcher(bundle.apps, 'linux')
    const enforce = await defaultEnforcer()
    const seen: Finding[] = []
    const kills: Promise<unknown>[] = []
    const w = new ProcessWatcher({
      onFindings: (f) => {
        seen.push(...f)
        kills.push(enforce(f, { stateDir: dir, os: 'linux', bundle }))
      },
    })
    w.setPolicy(matcher)
    await w.start()
    try {
      const lookalike = start(`${BANNED_NAME}-notes`)
      const banned = start(BANNED_NAME)
      const t0 = Date.now()
      const died = await Promise.race([exited(banned), new Promise<number>((r) => setTimeout(() => r(-1), 3000))])
      expect(died).toBeGreaterThan(0)
      expect(died - t0).toBeLessThan(1000)
      expect(seen.map((f) => [f.appId, f.signal, f.subject])).toEqual([
        ['telegram', 'process-name', `process:${banned.pid}`],
      ])
      const results = (await Promise.all(kills)).flat() as { action: string; ok: boolean }[]
      expect(results).toEqual([expect.objectContaining({ action: 'kill', ok: true })])
      // Give the watcher a few more ticks: the lookalike is never touched.
      await new Promise((r) => setTimeout(r, 600))
      expect(lookalike.exitCode).toBeNull()
      expect(lookalike.signalCode).toBeNull()
      // A relaunch is killed again.
      const again = start(BANNED_NAME)
      const t1 = Date.now()
      const died2 = await Promise.race([exited(again), new Promise<number>((r) => setTimeout(() => r(-1), 3000))])
      expect(died2 - t1).toBeLessThan(1000)
      expect(died2).toBeGreaterThan(0)
    } finally {
      w.stop()
    }
  })

  it('sees a process that execs into a banned binary after starting (launcher scripts)', async () => {
    const bundle = compileBundle([telegramPolicy(['report'])], 'military', { version: 1 })
    const seen: number[] = []
    const w = new ProcessWatcher({ onFindings: (_f, row) => seen.push(row.pid) })
    w.setPolicy(compileMatcher(bundle.apps, 'linux'))
    await w.start()
    try {
      const c = spawn('/bin/sh', ['-c', `sleep 0.5; exec ${join(dir, BANNED_NAME)} 30`], { stdio: 'ignore' })
      children.push(c)
      const end = Date.now() + 3000
      while (!seen.includes(c.pid!) && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
      expect(seen).toContain(c.pid)
      expect(w.stats.execs).toBeGreaterThan(0)
      c.kill('SIGKILL')
    } finally {
      w.stop()
    }
  })
})
