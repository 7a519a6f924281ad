// The real thing: Debian's telegram-desktop package, found by the shipped catalogue through the real CLI.
// Runs when the package is installed (.ci/run installs it and sets INTERDICT_TEST_TELEGRAM=1, which turns a
// missing package into a failure rather than a skip).
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { killQuietly, runCli, tempDir, waitFor } from '../helpers.js'

const BIN = '/usr/bin/telegram-desktop'
const required = process.env.INTERDICT_TEST_TELEGRAM === '1'
const present = existsSync(BIN)

describe.skipIf(!present && !required)('Debian telegram-desktop (real package)', () => {
  const home = tempDir('interdict-tg-home-')
  let tg: ChildProcess | undefined
  afterAll(() => {
    killQuietly(tg)
    home.cleanup()
  })

  it('is installed', () => expect(existsSync(BIN)).toBe(true))

  it('the catalogue finds the package and its desktop entry, and the running process', async () => {
    // Headless (offscreen Qt) inside a fresh network namespace with no route out: it never reaches Telegram.
    tg = spawn('unshare', ['--net', BIN], {
      env: { ...process.env, HOME: home.path, QT_QPA_PLATFORM: 'offscreen' },
      stdio: 'ignore',
    })
    // unshare execs telegram-desktop in place, so the child's pid is Telegram's.
    await waitFor(() => existsSync(`/proc/${tg!.pid}/exe`) && tg!.exitCode === null, 10_000)
    await new Promise((r) => setTimeout(r, 500))

    const res = await runCli('interdict-agent', ['scan', '--class', 'military', '--json'])
    expect(res.stderr).toBe('')
    expect(res.code).toBe(1)
    const out = JSON.parse(res.stdout) as {
      findings: { appId: string; signal: string; subject: string; actions: string[] }[]
    }
    const bySubject = new Map(out.findings.map((f) => [f.subject, f]))
    expect(bySubject.get('package:deb:telegram-desktop')).toMatchObject({ appId: 'telegram', signal: 'package' })
    expect(bySubject.get('desktop-entry:/usr/share/applications/org.telegram.desktop.desktop')).toMatchObject({
      appId: 'telegram',
      signal: 'bundle-id',
    })
    const proc = bySubject.get(`process:${tg.pid}`)
    expect(proc).toMatchObject({ appId: 'telegram' })
    // The binary carries tdesktop's GUID marker, the strongest signal the catalogue has for it.
    expect(['binary-marker', 'process-name']).toContain(proc!.signal)
    expect(proc!.actions).toContain('kill')
  })
})
