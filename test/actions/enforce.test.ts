import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { enforce } from '../../agent/actions/index.js'
import { tempDir, isAlive, runCli, waitFor } from '../helpers.js'
import type { CommandRunner } from '../../agent/actions/types.js'
import { compileBundle } from '../../policies/compile.js'
import type { PolicyFile } from '../../policies/schema.js'
import { finding, linux, startBanned } from './helpers.js'

describe.skipIf(!linux)('enforce()', () => {
  let dir: ReturnType<typeof tempDir>
  const pids: number[] = []
  beforeEach(() => {
    dir = tempDir('interdict-enforce-')
  })
  afterEach(() => {
    for (const p of pids.splice(0)) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {}
    }
    dir.cleanup()
  })

  it('changes nothing for report-only and exempted findings', async () => {
    const child = startBanned(dir.path, 'banned-report')
    const pid = child.pid as number
    pids.push(pid)
    const exe = join(dir.path, 'banned-report')
    const row = { kind: 'process' as const, pid, ppid: process.pid, name: 'banned-report', exe }
    const results = await enforce(
      [finding(row, ['report']), finding(row, ['report', 'kill', 'quarantine'], { exempted: 'approved until 2099' })],
      { stateDir: join(dir.path, 'state'), os: 'linux' },
    )
    expect(results).toHaveLength(2)
    for (const r of results) expect(r).toMatchObject({ action: 'report', ok: true, status: 'noop' })
    expect(results[1]?.detail).toMatch(/exempt/)
    await new Promise((r) => setTimeout(r, 200))
    expect(isAlive(pid)).toBe(true)
    expect(readFileSync(exe).length).toBeGreaterThan(0)
  })

  it('kills once per pid, aggregates block-network, notifies once per app', async () => {
    const child = startBanned(dir.path, 'banned-ladder')
    const pid = child.pid as number
    pids.push(pid)
    const hosts = join(dir.path, 'hosts')
    writeFileSync(hosts, '127.0.0.1 localhost\n')
    const calls: string[] = []
    const runner: CommandRunner = async (cmd, args) => {
      calls.push([cmd, ...args].join(' '))
      return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false }
    }
    const policy = {
      id: 'p',
      title: 't',
      apps: [
        {
          id: 'banned',
          name: 'Banned',
          match: {
            processNames: ['banned-ladder'],
            network: { domains: ['banned.example'], cidrs: ['198.51.100.0/24'] },
          },
        },
      ],
      assignments: { c: { actions: ['kill', 'block-network', 'notify'] } },
    } as PolicyFile
    const bundle = compileBundle([policy], 'c', { version: 1 })
    const row = { kind: 'process' as const, pid, ppid: process.pid, name: 'banned-ladder' }
    const actions = ['kill', 'block-network', 'notify'] as const
    const results = await enforce([finding(row, [...actions]), finding(row, [...actions], { signal: 'path' })], {
      stateDir: join(dir.path, 'state'),
      os: 'linux',
      bundle,
      runner,
      network: { hostsPath: hosts, kind: 'nftables' },
      notify: { users: [{ uid: 65534, name: 'nobody' }] },
    })
    expect(results.map((r) => r.action)).toEqual(['kill', 'kill', 'block-network', 'notify'])
    expect(results[0]).toMatchObject({ ok: true, status: 'done', pid })
    expect(results[2]).toMatchObject({ ok: true, domains: ['banned.example'], cidrs: ['198.51.100.0/24'] })
    expect(readFileSync(hosts, 'utf8')).toContain('0.0.0.0 www.banned.example')
    expect(results[3]).toMatchObject({ ok: true, action: 'notify' })
    await waitFor(() => !isAlive(pid) || undefined)
    await waitFor(() => calls.some((c) => c.includes('notify-send')) || undefined)
    expect(calls[0]).toBe('nft -f -')
  })

  it('interdict-agent scan --enforce kills a real banned process', async () => {
    const name = `banned-${process.pid % 10000}`
    const child = startBanned(dir.path, name)
    const pid = child.pid as number
    pids.push(pid)
    await waitFor(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name || undefined)
    const policyFile = join(dir.path, 'policy.json')
    writeFileSync(
      policyFile,
      JSON.stringify({
        id: 'ban-test',
        title: 'test',
        apps: [{ id: 'banned', name: 'Banned', match: { processNames: [name] } }],
        assignments: { c: { actions: ['report', 'kill'] } },
      }),
    )
    const state = join(dir.path, 'state')
    const r = await runCli('interdict-agent', [
      'scan',
      '--enforce',
      '--policy',
      policyFile,
      '--class',
      'c',
      '--state-dir',
      state,
      '--json',
    ])
    expect(r.code, r.stderr).toBe(1)
    const out = JSON.parse(r.stdout) as { mode: string; actions: { action: string; ok: boolean; pid?: number }[] }
    expect(out.mode).toBe('enforce')
    expect(out.actions).toEqual([expect.objectContaining({ action: 'kill', ok: true, pid })])
    await waitFor(() => !isAlive(pid) || undefined)
  }, 60_000)
})
