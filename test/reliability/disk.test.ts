// Reliability: the agent's state dir stops taking writes (disk full, then read-only) while the daemon runs. Expected
// (DESIGN §3): a clear error in the log and in the health the server receives, no crash, and enforcement goes on
// from memory: the bundle in force keeps killing banned processes (real ones), and a bundle pushed meanwhile is
// accepted and enforced from memory, then written once the disk recovers.
//
// As root (chmod does not stop root) the state dir is a 256 KiB tmpfs: filled up for ENOSPC, then remounted
// read-only for EROFS. Otherwise it is chmod 0500 (EACCES). Skipped when neither is possible.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { processesCollector } from '../../agent/collectors/processes.js'
import { Daemon } from '../../agent/daemon.js'
import { enroll } from '../../agent/sync/enroll.js'
import type { PolicyFile } from '../../policies/schema.js'
import { FakeServer } from '../agent/fake-server.js'

const isRoot = process.getuid?.() === 0

function canMount(): boolean {
  if (!isRoot) return false
  const probe = mkdtempSync(join(tmpdir(), 'interdict-mountprobe-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' })
    execFileSync('umount', [probe], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    rmSync(probe, { recursive: true, force: true })
  }
}

const mode: 'tmpfs' | 'chmod' | undefined =
  process.platform !== 'linux' ? undefined : canMount() ? 'tmpfs' : isRoot ? undefined : 'chmod'
const skipReason = mode
  ? ''
  : process.platform !== 'linux'
    ? 'not Linux'
    : 'running as root without permission to mount a tmpfs (chmod cannot stop root)'

// Names unique to this run: other suites on the machine run agents too, and processes are machine-wide.
const tag = randomBytes(3).toString('hex')
const BANNED = `dskban-${tag}`
const OTHER = `dskother-${tag}`
const policy = (id: string, name: string) =>
  ({
    id: `ban-${id}`,
    title: `${name} banned`,
    apps: [{ id, name, match: { processNames: [name] } }],
    assignments: { military: { actions: ['report', 'kill'] } },
  }) as PolicyFile

const children: ChildProcess[] = []
const cleanups: (() => unknown)[] = []
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {})
})

async function until(cond: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe.skipIf(!mode)(`agent state dir not writable (${mode ?? `skipped: ${skipReason}`})`, () => {
  it('logs and reports the problem, does not crash, and keeps enforcing from memory', { timeout: 60_000 }, async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    cleanups.push(() => process.off('unhandledRejection', onUnhandled))

    const server = new FakeServer()
    await server.start()
    cleanups.push(() => server.stop())
    const bin = mkdtempSync(join(tmpdir(), 'interdict-disk-bin-'))
    cleanups.push(() => rmSync(bin, { recursive: true, force: true }))
    copyFileSync('/bin/sleep', join(bin, BANNED))
    copyFileSync('/bin/sleep', join(bin, OTHER))
    const start = (name: string) => {
      const c = spawn(join(bin, name), ['60'], { stdio: 'ignore' })
      children.push(c)
      return c
    }
    const dead = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null

    const dir = mkdtempSync(join(tmpdir(), 'interdict-disk-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    if (mode === 'tmpfs') {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', dir])
      cleanups.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }))
    }
    server.push([policy('banned', BANNED)], 'military', 1)
    await enroll({
      server: server.url,
      secret: 's3cret',
      stateDir: dir,
      facts: { hardwareId: 'disk-hw', hostname: 'disk', os: 'linux' },
    })
    const logs: { level: number; msg: string; err?: string }[] = []
    const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s)) })
    const d = new Daemon({
      stateDir: dir,
      logger,
      collectors: [processesCollector],
      waitSec: 2,
      flushCron: '* * * * * *',
      heartbeatCron: '0 0 1 1 *',
      scanCron: '0 0 1 1 *',
      reportBatchMs: 50,
    })
    cleanups.push(() => d.stop())
    await d.start()
    await until(() => d.bundle?.payload.version === 1, 5000, 'bundle v1')
    await d.heartbeat()
    expect(d.health().status).toBe('ok')

    // ---- fault 1: the disk fills up (tmpfs) / the dir is made read-only (chmod) ----
    const code1 = mode === 'tmpfs' ? 'ENOSPC' : 'EACCES'
    if (mode === 'tmpfs') {
      try {
        writeFileSync(join(dir, 'filler'), Buffer.alloc(1024 * 1024))
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC')
      }
    } else {
      chmodSync(join(dir, 'outbox'), 0o500)
      chmodSync(dir, 0o500)
      cleanups.push(() => chmodSync(dir, 0o700))
      cleanups.push(() => chmodSync(join(dir, 'outbox'), 0o700))
    }
    const p1 = start(BANNED)
    await until(() => dead(p1), 3000, 'banned process killed with the disk full')
    await until(
      () => server.reports().some((r) => JSON.stringify(r.findings).includes(`process:${p1.pid}`)),
      5000,
      'the kill report, delivered from memory',
    )
    expect(d.health()['outbox.error']).toMatch(new RegExp(code1))
    expect(d.health().status).toBe('degraded: state dir not writable')
    expect(logs.some((l) => l.level >= 50 && new RegExp(code1).test(l.err ?? ''))).toBe(true)
    // The server hears about it in the heartbeat's health.
    await d.heartbeat()
    const hb = () => server.received.filter((r) => r.route === '/api/v1/heartbeat').at(-1)!.body
    expect((hb().health as Record<string, string>).status).toBe('degraded: state dir not writable')
    expect((hb().health as Record<string, string>)['outbox.error']).toMatch(new RegExp(code1))

    // A new bundle arrives while nothing can be written: accepted and enforced from memory.
    server.push([policy('banned', BANNED), policy('other', OTHER)], 'military', 2)
    await until(() => d.bundle?.payload.version === 2, 10_000, 'bundle v2 accepted from memory')
    expect(d.health()['state.error']).toMatch(new RegExp(`${code1}|cannot write`))
    const p2 = start(OTHER)
    await until(() => dead(p2), 3000, 'process banned by the in-memory bundle killed')

    // ---- fault 2 (tmpfs): read-only remount ----
    let faults = 1
    if (mode === 'tmpfs') {
      // A remount to read-only fails while a file on it is open for writing (the agent retrying a write): retry briefly.
      for (let i = 0; ; i++) {
        try {
          execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' })
          break
        } catch (err) {
          if (i >= 50) throw err
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      faults++
      const p3 = start(BANNED)
      await until(() => dead(p3), 3000, 'banned process killed on a read-only state dir')
      await until(() => /EROFS/.test(String(d.health()['outbox.error'])), 5000, 'EROFS in health')
      expect(logs.some((l) => l.level >= 50 && /EROFS/.test(l.err ?? ''))).toBe(true)
      await until(
        () => server.reports().some((r) => JSON.stringify(r.findings).includes(`process:${p3.pid}`)),
        5000,
        'the read-only kill report',
      )
      execFileSync('mount', ['-o', 'remount,rw', dir])
      rmSync(join(dir, 'filler'), { force: true })
    } else {
      chmodSync(dir, 0o700)
      chmodSync(join(dir, 'outbox'), 0o700)
    }

    // ---- recovery: the in-memory bundle is written, health clears ----
    await d.heartbeat()
    await d.fullScan('test')
    await until(() => d.health().status === 'ok', 5000, 'health back to ok')
    const onDisk = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as { payload: { version: number } }
    expect(onDisk.payload.version).toBe(2)
    expect(unhandled).toEqual([])
    console.log(
      `[disk] faults injected: ${faults} (${mode === 'tmpfs' ? 'ENOSPC on a full tmpfs, EROFS remount' : 'EACCES'}); ` +
        `${mode === 'tmpfs' ? 3 : 2} real processes killed meanwhile; bundle v2 accepted from memory and persisted ` +
        'on recovery; no crash, no unhandled rejection',
    )
    await d.stop()
  })
})
