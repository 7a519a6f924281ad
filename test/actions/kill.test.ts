import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { kill, killPid } from '../../agent/actions/kill.js'
import { linuxProcessTable } from '../../agent/actions/proc.js'
import { ancestorsOf, buildSafetyContext } from '../../agent/actions/safety.js'
import { isAlive, tempDir, waitFor } from '../helpers.js'
import { finding, linux, startBanned } from './helpers.js'

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

describe.skipIf(!linux)('kill (real processes)', () => {
  let dir: ReturnType<typeof tempDir>
  const started: number[] = []
  beforeEach(() => {
    dir = tempDir('interdict-kill-')
  })
  afterEach(() => {
    for (const p of started.splice(0)) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {}
    }
    dir.cleanup()
  })

  it('kills a banned copy of sleep, verified gone', async () => {
    const child = startBanned(dir.path, 'banned-sleeper')
    const pid = child.pid as number
    started.push(pid)
    await waitFor(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'banned-sleeper' || undefined)
    const safety = await buildSafetyContext({ stateDir: dir.path })
    const r = await kill(
      finding({ kind: 'process', pid, ppid: process.pid, name: 'banned-sleeper', exe: `${dir.path}/banned-sleeper` }, [
        'kill',
      ]),
      safety,
    )
    expect(r).toMatchObject({ action: 'kill', ok: true, status: 'done', pid })
    expect(r.killed).toContain(pid)
    await waitFor(() => !isAlive(pid) || child.exitCode !== null || child.signalCode !== null || undefined)
    // Idempotent: a second kill is a no-op.
    const again = await killPid(pid, safety)
    expect(again.status).toBe('noop')
  })

  it('kills a whole sh -c tree (parent and its children)', async () => {
    const sh = spawn('/bin/sh', ['-c', 'sleep 60 & sleep 60 & (sleep 60 & wait) & wait'], {
      stdio: 'ignore',
      detached: true,
    })
    const pid = sh.pid as number
    started.push(pid)
    const table = linuxProcessTable()
    const tree = await waitFor(async () => {
      const { descendantsOf } = await import('../../agent/actions/kill.js')
      const d = descendantsOf(pid, await table.list())
      return d.length >= 4 ? d : undefined
    })
    started.push(...tree)
    const safety = await buildSafetyContext({ stateDir: dir.path })
    const r = await killPid(pid, safety, { graceMs: 500 })
    expect(r).toMatchObject({ ok: true, status: 'done' })
    expect(new Set(r.killed)).toEqual(new Set([...tree, pid]))
    for (const p of [...tree, pid]) {
      const info = await table.get(p)
      expect(info === undefined || info.state === 'Z').toBe(true)
    }
    expect(childrenOf(pid)).toEqual([])
  })

  it('refuses PID 1, the agent itself and its ancestors', async () => {
    const safety = await buildSafetyContext()
    const ancestors = await ancestorsOf(process.pid, linuxProcessTable())
    expect(ancestors.length).toBeGreaterThan(0)
    for (const pid of [1, process.pid, ...ancestors.filter((p) => p !== 1)]) {
      const r = await killPid(pid, safety)
      expect(r, `pid ${pid}`).toMatchObject({ ok: false, status: 'refused' })
      expect(isAlive(pid)).toBe(true)
    }
  })
})
