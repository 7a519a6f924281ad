// The standalone server binary (linux-x64), built as a release is (~20 s): on a fresh data dir it writes reports on
// its own writer thread (the bundled thread source it carries, started as a worker), answers queries, and keeps every
// acknowledged report across kill -9. Skipped, saying why, where the pinned Node tarball cannot be had.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN, call, enrollDevices, finding, report } from '../server/helpers.js'
import { type ServerProcess, spawnServer } from '../server/process.js'
import { buildLinuxX64, cannotBuild } from './linux-x64.js'

const skip = await cannotBuild()
if (skip) process.stderr.write(`test/build/server-binary.test.ts skipped: ${skip}\n`)

describe.skipIf(skip !== undefined)('standalone server binary (linux-x64)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'interdict-server-binary-'))
  const bin = join(dir, 'interdict-server-linux-x64')
  const start = () => spawnServer(['--data-dir', join(dir, 'data')], { INTERDICT_ADMIN_TOKEN: ADMIN }, [], bin)
  let srv: ServerProcess | undefined

  beforeAll(() => {
    buildLinuxX64('server', dir)
  }, 180_000)
  afterAll(async () => {
    await srv?.stop('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('stores reports on its writer thread and keeps every acknowledged one across kill -9', async () => {
    expect(existsSync(bin)).toBe(true)
    srv = await start()
    expect(srv.stdout()).toMatch(/"reportWriter":"thread"/)
    const { devices } = await enrollDevices(srv.url, 'military', 3)
    const sent = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(srv!.url, 'POST', '/api/v1/reports', {
          token: devices[i % 3]!.deviceToken,
          body: report({ findings: [finding('f1')] }),
        }),
      ),
    )
    expect(sent.map((r) => r.status)).toEqual(Array(60).fill(202))
    await srv.stop('SIGKILL')

    srv = await start()
    const f = await call(srv.url, 'GET', '/api/v1/admin/findings?app=chatapp', { token: ADMIN })
    expect(f.body.findings).toHaveLength(60)
    const c = await call(srv.url, 'GET', '/api/v1/admin/devices?class=military', { token: ADMIN })
    expect(c.body.devices.map((d: { status: string }) => d.status)).toEqual(Array(3).fill('noncompliant'))
  }, 60_000)
})
