import { chmodSync, chownSync, existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { listQuarantine, quarantine, restoreQuarantine } from '../../agent/actions/quarantine.js'
import { buildSafetyContext } from '../../agent/actions/safety.js'
import { tempDir } from '../helpers.js'
import { finding, linux, root } from './helpers.js'

describe.skipIf(!linux)('quarantine', () => {
  let dir: ReturnType<typeof tempDir>
  let state: ReturnType<typeof tempDir>
  beforeEach(() => {
    dir = tempDir('interdict-q-')
    state = tempDir('interdict-qstate-')
  })
  afterEach(() => {
    dir.cleanup()
    state.cleanup()
  })

  it.skipIf(!root)('round trip: bytes, mode, owner and mtime identical; restore never overwrites', async () => {
    const file = join(dir.path, 'banned-app')
    const bytes = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 255, 10, 13])
    writeFileSync(file, bytes)
    chownSync(file, 65534, 65534)
    chmodSync(file, 0o751)
    const mtime = new Date('2024-05-06T07:08:09.123Z')
    utimesSync(file, mtime, mtime)
    const before = statSync(file)

    const safety = await buildSafetyContext({ stateDir: state.path })
    const f = finding({ kind: 'executable', path: file } as never, ['quarantine'], { signal: 'path', matched: file })
    const q = await quarantine(f, safety, { stateDir: state.path })
    expect(q).toMatchObject({ ok: true, status: 'done', path: file })
    expect(existsSync(file)).toBe(false)
    const [m] = await listQuarantine(state.path)
    expect(m).toMatchObject({ originalPath: file, uid: 65534, gid: 65534, mode: 0o751 })
    // Idempotent: the file is already in the vault.
    expect((await quarantine(f, safety, { stateDir: state.path })).ok).toBe(true)

    const id = q.quarantineId as string
    const r = await restoreQuarantine(state.path, id)
    expect(r).toMatchObject({ ok: true })
    const after = statSync(file)
    expect(readFileSync(file).equals(bytes)).toBe(true)
    expect(after.mode).toBe(before.mode)
    expect([after.uid, after.gid]).toEqual([65534, 65534])
    // fs.utimes takes (double) seconds, so nanoseconds can drift by a rounding step: identical to the microsecond.
    expect(Math.abs(after.mtimeMs - before.mtimeMs)).toBeLessThan(0.001)
    expect(Math.round(after.mtimeMs)).toBe(mtime.getTime())

    // Quarantine again, put something else at the original path: restore refuses to overwrite it.
    const q2 = await quarantine(f, safety, { stateDir: state.path })
    expect(q2.ok).toBe(true)
    writeFileSync(file, 'user data')
    const r2 = await restoreQuarantine(state.path, q2.quarantineId as string)
    expect(r2.ok).toBe(false)
    expect(readFileSync(file, 'utf8')).toBe('user data')
  })

  it('refuses to move /usr/bin/sleep for a process-name finding', async () => {
    const safety = await buildSafetyContext({ stateDir: state.path })
    const exe = existsSync('/usr/bin/sleep') ? '/usr/bin/sleep' : '/bin/sleep'
    const f = finding({ kind: 'process', pid: 999_999, ppid: 1, name: 'sleep', exe }, ['quarantine'])
    const r = await quarantine(f, safety, { stateDir: state.path })
    expect(r).toMatchObject({ ok: false, status: 'refused' })
    expect(r.reason).toMatch(/system directory/)
    expect(existsSync(exe)).toBe(true)
  })
})
