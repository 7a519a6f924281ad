import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeServer, telegramPolicy } from './fake-server.js'

const run = promisify(execFile)
const bin = new URL('../../bin/interdict-agent.js', import.meta.url).pathname
let dir: string
let server: FakeServer

async function agent(args: string[]) {
  try {
    const r = await run(process.execPath, [bin, ...args], { env: { ...process.env, INTERDICT_STATE_DIR: '' } })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'interdict-cli-'))
  server = new FakeServer()
  await server.start()
  server.push([telegramPolicy()], 'military', 3)
})
afterAll(async () => {
  await server.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('agent CLI', () => {
  it('status before enrollment exits 3', async () => {
    const r = await agent(['status', '--state-dir', dir, '--json'])
    expect(r.code).toBe(3)
    expect(JSON.parse(r.stdout)).toMatchObject({ enrolled: false })
  })

  it('enroll: 3 on a wrong secret, 2 on a missing flag, 0 and JSON on success; status shows the bundle', async () => {
    expect((await agent(['enroll', '--server', server.url, '--secret', 'nope', '--state-dir', dir])).code).toBe(3)
    expect((await agent(['enroll', '--server', server.url, '--state-dir', dir])).code).toBe(2)
    const ok = await agent(['enroll', '--server', server.url, '--secret', 's3cret', '--state-dir', dir, '--json'])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ class: 'military', policy: { status: 'accepted', version: 3 } })
    const st = await agent(['status', '--state-dir', dir, '--json'])
    // Enrolled with a bundle but no daemon running yet: degraded (exit 1).
    expect(st.code).toBe(1)
    expect(JSON.parse(st.stdout)).toMatchObject({ enrolled: true, class: 'military', bundle: { version: 3 } })
    const q = await agent(['quarantine', 'list', '--state-dir', dir, '--json'])
    expect(q.code).toBe(0)
    expect(JSON.parse(q.stdout)).toEqual([])
  })
})
