import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PolicySync, sendItem } from '../../agent/sync/client.js'
import { loadConfig } from '../../agent/sync/config.js'
import { EnrollError, enroll } from '../../agent/sync/enroll.js'
import { createClient } from '../../agent/sync/http.js'
import { Outbox } from '../../agent/sync/outbox.js'
import { type OfferResult, PolicyStore } from '../../agent/sync/policy-store.js'
import { FakeServer, telegramPolicy } from './fake-server.js'

const facts = { hardwareId: 'hw-1', hostname: 'test-host', os: 'linux test' }
let dir: string
let server: FakeServer

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'interdict-sync-'))
  server = new FakeServer()
  await server.start()
})
afterEach(async () => {
  await server.stop()
  await rm(dir, { recursive: true, force: true })
})

async function enrolled() {
  await enroll({ server: server.url, secret: 's3cret', stateDir: dir, facts })
  const config = await loadConfig(dir)
  const client = createClient({ server: config.server, token: config.deviceToken })
  const store = new PolicyStore(dir, { publicKeyPem: config.policyKey, class: config.class })
  await store.load()
  return { config, client, store }
}

describe('enrollment', () => {
  it('stores the identity with private permissions and fetches the first policy', async () => {
    server.push([telegramPolicy()], 'military', 1)
    const r = await enroll({ server: `${server.url}/`, secret: 's3cret', stateDir: dir, facts })
    expect(r.config).toMatchObject({ class: 'military', deviceId: 'dev-1', server: server.url })
    expect(r.firstPolicy.status).toBe('accepted')
    expect((await stat(join(dir, 'config.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await loadConfig(dir)).policyKey).toBe(server.key.publicKeyPem)
  })

  it('maps a refused secret to exit 3, an unreachable server to exit 4 and a bad URL to exit 2', async () => {
    await expect(enroll({ server: server.url, secret: 'wrong', stateDir: dir, facts })).rejects.toMatchObject({
      exitCode: 3,
    })
    const port = server.port
    await server.stop()
    const err = await enroll({ server: `http://127.0.0.1:${port}`, secret: 's3cret', stateDir: dir, facts }).catch(
      (e) => e,
    )
    expect(err).toBeInstanceOf(EnrollError)
    expect(err.exitCode).toBe(4)
    expect(err.message).toMatch(/unreachable/)
    await expect(enroll({ server: 'ftp://x', secret: 's', stateDir: dir, facts })).rejects.toMatchObject({
      exitCode: 2,
    })
  })
})

describe('policy long-poll', () => {
  it('receives a push within a moment, answers 304 otherwise, and reports rejections keeping the last good', async () => {
    const { client, store } = await enrolled()
    const results: OfferResult[] = []
    const sync = new PolicySync({ client, store, waitSec: 5, onResult: (r) => void results.push(r) })
    server.push([telegramPolicy()], 'military', 1)
    sync.start()
    await until(() => results.length === 1)
    expect(results[0]!.status).toBe('accepted')
    // Long-polling now; a push answers at once.
    await new Promise((r) => setTimeout(r, 300))
    const t0 = Date.now()
    server.push([telegramPolicy(['report'])], 'military', 2)
    await until(() => results.length === 2)
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(store.current?.payload.version).toBe(2)
    // A rollback is rejected; the last good bundle stays and the rejection is recorded.
    server.push([telegramPolicy()], 'military', 1)
    await until(() => results.length === 3)
    expect(results[2]).toMatchObject({ status: 'rejected', rejection: { reason: 'rollback', version: 1 } })
    expect(store.current?.payload.version).toBe(2)
    await new Promise((r) => setTimeout(r, 300))
    // The rejected bundle's ETag is remembered: no re-download loop.
    const polls = server.polls
    await new Promise((r) => setTimeout(r, 500))
    expect(server.polls - polls).toBeLessThanOrEqual(1)
    await sync.stop()
  })
})

describe('offline delivery', () => {
  it('queues on disk while the server is down and delivers each report exactly once, in order, when it returns', async () => {
    const { client } = await enrolled()
    const port = server.port
    await server.stop()
    const box = await Outbox.open(join(dir, 'outbox'))
    for (let i = 0; i < 30; i++) {
      await box.enqueue(
        'finding',
        '/api/v1/reports',
        { bundleVersion: 1, scannedAt: new Date().toISOString(), findings: [], actions: [], inventory: { n: i } },
        { idField: 'reportId' },
      )
    }
    const down = await box.flush((item) => sendItem(client, item))
    expect(down.delivered).toBe(0)
    expect(down.remaining).toBe(30)
    // The agent restarts while offline: the queue is on disk.
    const reopened = await Outbox.open(join(dir, 'outbox'))
    expect(reopened.size.items).toBe(30)
    await server.start(port)
    // A server that fails mid-way (500) must not lose or duplicate anything either.
    let calls = 0
    const flaky = await reopened.flush(async (item) => {
      if (++calls === 11) return 'retry'
      return sendItem(client, item)
    })
    expect(flaky.delivered).toBe(10)
    const rest = await reopened.flush((item) => sendItem(client, item))
    expect(rest).toMatchObject({ delivered: 20, remaining: 0 })
    const got = server.reports().map((b) => (b.inventory as { n: number }).n)
    expect(got).toEqual([...Array(30).keys()])
    expect(server.duplicates).toBe(0)
    expect(new Set(server.reports().map((b) => b.reportId)).size).toBe(30)
  })
})

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}
