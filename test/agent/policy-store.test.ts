import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PolicyStore } from '../../agent/sync/policy-store.js'
import { compileBundle } from '../../policies/compile.js'
import type { SignedBundle } from '../../policies/schema.js'
import { generateSigningKey, signBundle } from '../../policies/sign.js'
import { telegramPolicy } from './fake-server.js'

const key = generateSigningKey()
const other = generateSigningKey()
const policies = [telegramPolicy()]
const bundle = (version: number, opts: { cls?: string; now?: Date; ttlDays?: number; k?: string } = {}) =>
  signBundle(
    compileBundle(policies, opts.cls ?? 'military', {
      version,
      now: opts.now ?? new Date(),
      ttlDays: opts.ttlDays ?? 7,
    }),
    opts.k ?? key.privateKeyPem,
  )

let dir: string
let now = new Date()
const store = () => new PolicyStore(dir, { publicKeyPem: key.publicKeyPem, class: 'military' }, () => now)

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'interdict-policy-'))
  now = new Date()
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('policy store', () => {
  it('accepts a good bundle, persists it and reloads it after a restart', async () => {
    const s = store()
    const r = await s.offer(bundle(3), '"military.3"')
    expect(r.status).toBe('accepted')
    const again = store()
    const b = await again.load()
    expect(b?.payload.version).toBe(3)
    expect(again.metadata).toMatchObject({ acceptedVersion: 3, etag: '"military.3"' })
    // The same bundle again is not a change (no re-enforcement).
    expect((await again.offer(b!.signed)).status).toBe('unchanged')
  })

  it('rejects tampered, rolled-back, expired, wrong-class and foreign-key bundles and keeps the last good one', async () => {
    const s = store()
    await s.offer(bundle(5))
    const tampered = structuredClone(bundle(6)) as SignedBundle
    tampered.payload.apps[0]!.actions = ['report']
    const cases: [unknown, string][] = [
      [tampered, 'signature'],
      [bundle(4), 'rollback'],
      [bundle(7, { now: new Date(Date.now() - 10 * 86_400_000), ttlDays: 1 }), 'expired'],
      [bundle(8, { cls: 'standard' }), 'class'],
      [bundle(9, { k: other.privateKeyPem }), 'signature'],
      [{ payload: { version: 10 } }, 'malformed'],
      ['not json at all', 'malformed'],
    ]
    for (const [candidate, reason] of cases) {
      const r = await s.offer(candidate)
      expect(r.status, reason).toBe('rejected')
      if (r.status === 'rejected') expect(r.rejection.reason).toBe(reason)
      expect(s.current?.payload.version).toBe(5)
    }
    expect(s.metadata.lastRejection?.reason).toBe('malformed')
    const reloaded = store()
    expect((await reloaded.load())?.payload.version).toBe(5)
  })

  it('keeps enforcing a stored bundle after it expires (offline device), flagged expired', async () => {
    const s = store()
    await s.offer(bundle(2, { ttlDays: 1 }))
    now = new Date(Date.now() + 3 * 86_400_000)
    const later = store()
    const b = await later.load()
    expect(b?.payload.version).toBe(2)
    expect(b?.expired).toBe(true)
    expect(later.expiredNow()).toBe(true)
    // But an expired bundle offered fresh is still refused.
    const r = await later.offer(bundle(3, { now: new Date(Date.now() - 5 * 86_400_000), ttlDays: 1 }))
    expect(r.status).toBe('rejected')
  })

  it('refuses an older signed bundle swapped into bundle.json on disk (version floor kept apart)', async () => {
    const s = store()
    const old = bundle(1)
    await s.offer(old)
    await s.offer(bundle(2))
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(old))
    const reloaded = store()
    expect(await reloaded.load()).toBeUndefined()
    expect(reloaded.loadProblem).toMatch(/rollback/)
  })

  it('refuses a bundle.json edited on disk', async () => {
    const s = store()
    await s.offer(bundle(2))
    const text = await readFile(join(dir, 'bundle.json'), 'utf8')
    await writeFile(join(dir, 'bundle.json'), text.replace('"kill"', '"report"'))
    const reloaded = store()
    expect(await reloaded.load()).toBeUndefined()
    expect(reloaded.loadProblem).toMatch(/signature/)
  })
})
