import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../agent/sync/config.js'
import { enroll } from '../../agent/sync/enroll.js'
import { FakeServer } from './fake-server.js'

const facts = { hardwareId: 'hw-1', hostname: 'test-host', os: 'linux test' }
let dir: string
let server: FakeServer
let hasOpenssl = true
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' })
} catch {
  hasOpenssl = false
}

function ca(name: string) {
  const key = join(dir, `${name}.key`)
  const crt = join(dir, `${name}.pem`)
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ],
    { stdio: 'ignore' },
  )
  return { key, crt }
}

beforeAll(async () => {
  if (!hasOpenssl) return
  dir = await mkdtemp(join(tmpdir(), 'interdict-tls-'))
  const root = ca('interdict-test-ca')
  ca('other-ca')
  // Server certificate for 127.0.0.1 signed by the test CA.
  const key = join(dir, 'server.key')
  const csr = join(dir, 'server.csr')
  const crt = join(dir, 'server.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      '/CN=127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      root.crt,
      '-CAkey',
      root.key,
      '-CAcreateserial',
      '-out',
      crt,
      '-days',
      '2',
      '-extfile',
      join(dir, 'ext.cnf'),
    ],
    { stdio: 'ignore' },
  )
  server = new FakeServer()
  await server.start(0, { key: await readFile(key, 'utf8'), cert: await readFile(crt, 'utf8') })
})
afterAll(async () => {
  await server?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe.skipIf(!hasOpenssl)('pinned CA', () => {
  it('enrolls over HTTPS with the pinned CA and keeps a private copy of it', async () => {
    const state = join(dir, 'state-ok')
    const r = await enroll({
      server: server.url,
      secret: 's3cret',
      stateDir: state,
      caFile: join(dir, 'interdict-test-ca.pem'),
      facts,
    })
    expect(r.config.server).toMatch(/^https:/)
    const cfg = await loadConfig(state)
    expect(cfg.caFile).toBe(join(state, 'ca.pem'))
  })

  it('refuses a server whose certificate does not chain to the pinned CA (exit 4)', async () => {
    const err = await enroll({
      server: server.url,
      secret: 's3cret',
      stateDir: join(dir, 'state-bad'),
      caFile: join(dir, 'other-ca.pem'),
      facts,
    }).catch((e) => e)
    expect(err.exitCode).toBe(4)
    expect(err.message).toMatch(/TLS verification/)
  })

  it('refuses a file that is not a certificate (exit 2)', async () => {
    await expect(
      enroll({
        server: server.url,
        secret: 's3cret',
        stateDir: join(dir, 'state-x'),
        caFile: join(dir, 'ext.cnf'),
        facts,
      }),
    ).rejects.toMatchObject({ exitCode: 2 })
  })
})
