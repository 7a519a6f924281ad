import { describe, expect, it } from 'vitest'
import { canonicalJson } from '../../policies/canonical.js'
import { compileBundle, policyClasses } from '../../policies/compile.js'
import { loadPolicies } from '../../policies/load.js'
import { BundleRejected, generateSigningKey, keyIdOf, signBundle, verifyBundle } from '../../policies/sign.js'

const CATALOG = new URL('../../policies/catalog', import.meta.url).pathname

describe('canonical JSON', () => {
  it('is independent of key order and whitespace', () => {
    const a = canonicalJson({ b: 1, a: { y: [1, 'x', null], x: true } })
    const b = canonicalJson(JSON.parse('{ "a": { "x": true, "y": [1, "x", null] }, "b": 1 }'))
    expect(a).toBe(b)
    expect(a).toBe('{"a":{"x":true,"y":[1,"x",null]},"b":1}')
  })
  it('drops undefined fields and refuses non-finite numbers', () => {
    expect(canonicalJson({ a: undefined, b: 'é' })).toBe('{"b":"é"}')
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/)
  })
})

describe('bundle compilation and signing', async () => {
  const policies = await loadPolicies(CATALOG)
  const key = generateSigningKey()
  const now = new Date('2026-11-28T12:00:00Z')

  it('compiles one bundle per class with that class’s actions', () => {
    expect(policyClasses(policies)).toEqual([
      'critical-infrastructure',
      'defence',
      'government',
      'military',
      'standard',
    ])
    const military = compileBundle(policies, 'military', { version: 3, now })
    const tg = military.apps.find((a) => a.id === 'telegram')!
    expect(tg.actions).toEqual(['report', 'kill', 'quarantine', 'block-network', 'notify'])
    expect(military).toMatchObject({ class: 'military', version: 3, issuedAt: now.toISOString() })
    expect(Date.parse(military.expiresAt) - now.getTime()).toBe(7 * 86_400_000)
    const standard = compileBundle(policies, 'standard', { version: 1, now })
    expect(standard.apps.every((a) => a.actions.join() === 'report')).toBe(true)
    expect(compileBundle(policies, 'unassigned', { version: 1, now }).apps).toEqual([])
  })

  it('round-trips a signature and pins class, version and expiry', () => {
    const signed = signBundle(compileBundle(policies, 'military', { version: 5, now }), key.privateKeyPem)
    expect(signed.signature.keyId).toBe(keyIdOf(key.publicKeyPem))
    const ok = verifyBundle(JSON.parse(JSON.stringify(signed)), key.publicKeyPem, {
      class: 'military',
      minVersion: 5,
      now,
    })
    expect(ok.version).toBe(5)
    const reason = (f: () => unknown) => {
      try {
        f()
      } catch (err) {
        expect(err).toBeInstanceOf(BundleRejected)
        return (err as BundleRejected).reason
      }
      return 'accepted'
    }
    expect(reason(() => verifyBundle(signed, key.publicKeyPem, { class: 'government', now }))).toBe('class')
    expect(reason(() => verifyBundle(signed, key.publicKeyPem, { minVersion: 6, now }))).toBe('rollback')
    expect(reason(() => verifyBundle(signed, key.publicKeyPem, { now: new Date('2026-12-30T00:00:00Z') }))).toBe(
      'expired',
    )
    expect(reason(() => verifyBundle(signed, generateSigningKey().publicKeyPem, { now }))).toBe('signature')
    expect(reason(() => verifyBundle({ payload: signed.payload }, key.publicKeyPem, { now }))).toBe('malformed')
    expect(reason(() => verifyBundle('garbage', key.publicKeyPem, { now }))).toBe('malformed')
  })

  it('rejects a tampered bundle: a downgraded action, a removed app, a bumped version', () => {
    const signed = signBundle(compileBundle(policies, 'military', { version: 2, now }), key.privateKeyPem)
    const tamper = (edit: (b: typeof signed) => void) => {
      const copy = structuredClone(signed)
      edit(copy)
      return () => verifyBundle(copy, key.publicKeyPem, { now })
    }
    expect(tamper((b) => (b.payload.apps[0]!.actions = ['report']))).toThrow(/signature/)
    expect(tamper((b) => b.payload.apps.pop())).toThrow(/signature/)
    expect(tamper((b) => (b.payload.version = 99))).toThrow(/signature/)
    expect(tamper((b) => (b.signature.sig = Buffer.alloc(64).toString('base64')))).toThrow(/signature/)
    // A valid signature under a relabelled key id is still refused, naming both keys (rotation shows in the log).
    expect(tamper((b) => (b.signature.keyId = 'ffffffffffffffff'))).toThrow(/signed by key ffffffffffffffff, pinned/)
  })
})
