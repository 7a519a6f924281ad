import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { hasCommand } from '../../agent/actions/run.js'
import { buildSafetyContext } from '../../agent/actions/safety.js'
import { uninstall } from '../../agent/actions/uninstall.js'
import { tempDir } from '../helpers.js'
import { finding, linux, root } from './helpers.js'

const hasDpkg = linux && (await hasCommand('dpkg')) && (await hasCommand('dpkg-deb'))
const skipReason = !linux ? 'not Linux' : !root ? 'not root' : !hasDpkg ? 'no dpkg/dpkg-deb' : undefined

describe('uninstall a real .deb', () => {
  const name = `interdict-test-banned-${randomBytes(4).toString('hex')}`
  afterAll(() => {
    if (!skipReason) spawnSync('dpkg', ['--purge', name], { stdio: 'ignore' })
  })

  it.skipIf(skipReason !== undefined)(
    `builds, installs and removes it via dpkg (${skipReason ?? 'root + dpkg'})`,
    async () => {
      const dir = tempDir('interdict-deb-')
      try {
        const pkg = join(dir.path, 'pkg')
        mkdirSync(join(pkg, 'DEBIAN'), { recursive: true })
        mkdirSync(join(pkg, 'opt', name), { recursive: true })
        writeFileSync(join(pkg, 'opt', name, 'banned'), '#!/bin/sh\necho banned\n', { mode: 0o755 })
        writeFileSync(
          join(pkg, 'DEBIAN', 'control'),
          `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Interdict tests <test@example.invalid>\n` +
            'Description: banned test package\n',
        )
        const deb = join(dir.path, `${name}.deb`)
        execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, deb], { stdio: 'ignore' })
        execFileSync('dpkg', ['-i', deb], { stdio: 'ignore' })
        expect(execFileSync('dpkg', ['-s', name], { encoding: 'utf8' })).toMatch(/Status: install ok installed/)

        const safety = await buildSafetyContext()
        const f = finding({ kind: 'package', manager: 'deb', name, scope: 'system' }, ['uninstall'], {
          signal: 'package',
          matched: name,
        })
        const r = await uninstall(f, safety, { lockWaitMs: 5000 })
        expect(r, r.detail).toMatchObject({ action: 'uninstall', ok: true, status: 'done' })
        expect(r.commands?.some((c) => c.cmd === 'dpkg' && c.args.includes('-r') && c.code === 0)).toBe(true)
        const s = spawnSync('dpkg', ['-s', name], { encoding: 'utf8' })
        expect(s.status !== 0 || !/Status: install ok installed/.test(s.stdout)).toBe(true)
        // Idempotent: a second uninstall is a no-op.
        expect((await uninstall(f, safety)).status).toBe('noop')
      } finally {
        dir.cleanup()
      }
    },
    120_000,
  )
})
