// Reliability: the policy loader and the bundle verifier under generated garbage. parsePolicy only ever throws
// PolicyError; verifyBundle only ever throws BundleRejected and never accepts a mutated bundle. Plus clock skew:
// an agent clock off by up to a day still accepts; a bundle issued more than a day ahead is `not-yet-valid`.
import fc from 'fast-check'
import { stringify } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { canonicalJson } from '../../policies/canonical.js'
import { PolicyError, parsePolicy } from '../../policies/load.js'
import type { BundlePayload } from '../../policies/schema.js'
import { BundleRejected, generateSigningKey, signBundle, verifyBundle } from '../../policies/sign.js'
import { POLICY_YAML } from '../server/helpers.js'

const SCALE = process.env.INTERDICT_RELIABILITY_FULL === '1' ? 5 : 1
const tally = { policies: 0, policyAccepted: 0, bundles: 0, bundleAccepted: 0 }
afterAll(() => {
  console.log(
    `[fuzz policy] ${tally.policies} policy texts (${tally.policyAccepted} valid, the rest PolicyError); ` +
      `${tally.bundles} mutated bundles (${tally.bundleAccepted} accepted, all identical to the original)`,
  )
})

const VALID = parsePolicy(POLICY_YAML, 'valid.yaml') as unknown as Record<string, unknown>
const junk = fc.oneof(fc.anything(), fc.string(), fc.integer(), fc.constant(null), fc.constant('*'), fc.constant('.*'))

/** Apply random edits to a JSON-like value at random paths. */
function mutate(value: unknown, edits: { path: number[]; op: 'drop' | 'set'; v: unknown }[]): unknown {
  const root = structuredClone(value) as Record<string, unknown>
  for (const e of edits) {
    let node: unknown = root
    for (let i = 0; i < e.path.length; i++) {
      if (!node || typeof node !== 'object') break
      const keys = Object.keys(node)
      if (keys.length === 0) break
      const k = keys[e.path[i]! % keys.length]!
      const last = i === e.path.length - 1
      const child = (node as Record<string, unknown>)[k]
      if (last || !child || typeof child !== 'object') {
        if (e.op === 'drop') delete (node as Record<string, unknown>)[k]
        else (node as Record<string, unknown>)[k] = e.v
        break
      }
      node = child
    }
  }
  return root
}
const edits = fc.array(
  fc.record({
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
    op: fc.constantFrom('drop' as const, 'set' as const),
    v: junk,
  }),
  { minLength: 1, maxLength: 4 },
)

const encodable = (v: unknown) => {
  try {
    canonicalJson(v)
    return true
  } catch {
    return false
  }
}

/** Character-level edits of a text: insert, delete, replace. */
const textEdits = (text: string) =>
  fc
    .array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 4 })
    .map((es) => {
      let t = text
      for (const [at, del, ins] of es) {
        const i = at % (t.length + 1)
        t = t.slice(0, i) + ins + t.slice(i + del)
      }
      return t
    })

describe('parsePolicy under generated input', () => {
  it('throws only PolicyError', () => {
    const texts = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.string({ unit: 'grapheme', maxLength: 400 }),
      textEdits(POLICY_YAML),
      edits.map((e) => stringify(mutate(VALID, e))),
      edits.map((e) => JSON.stringify(mutate(VALID, e)) ?? ''),
      fc.jsonValue().map((v) => stringify(v)),
      // YAML features that tend to break loaders: anchors and aliases, tags, merge keys, deep nesting.
      fc.constantFrom(
        'a: &a [x, x]\nb: [*a, *a]\n',
        'id: !!binary aGVsbG8=\n',
        'id: !!js/function "function(){}"\n',
        '<<: {id: x}\n',
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
        '{"__proto__": {"polluted": 1}, "id": "x"}',
        'constructor: {prototype: {x: 1}}\n',
        '---\nid: a\n---\nid: b\n',
        'id: a\nid: b\n',
        '\uFEFFid: x\n',
        '',
      ),
    )
    fc.assert(
      fc.property(texts, (text) => {
        tally.policies++
        try {
          parsePolicy(text, 'fuzz.yaml')
          tally.policyAccepted++
        } catch (err) {
          if (!(err instanceof PolicyError))
            throw new Error(`non-PolicyError ${String(err)} for ${JSON.stringify(text)}`)
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      }),
      { numRuns: 10_000 * SCALE },
    )
  }, 120_000)
})

// yaml's doc.toJS() throws ReferenceError for alias bombs and unresolved aliases; parsePolicy must turn them into
// PolicyError like any other bad file.
const ALIAS_BOMBS = [
  'a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\nf: &f [*e, *e]\ng: [*f, *f]\n',
  `${'a: &a [1]\n'}${Array.from({ length: 200 }, (_, i) => `k${i}: *a`).join('\n')}\n`,
  'id: *x\n',
  '*!',
]
describe('parsePolicy on YAML alias bombs', () => {
  it('throws PolicyError naming the aliases, not the YAML library ReferenceError', () => {
    for (const text of ALIAS_BOMBS) expect(() => parsePolicy(text, 'bomb.yaml')).toThrow(PolicyError)
    expect(() => parsePolicy(ALIAS_BOMBS[0] as string, 'bomb.yaml')).toThrow(/bomb\.yaml.*alias/is)
  })
})

const key = generateSigningKey()
const other = generateSigningKey()
const now = Date.now()
const payload = (over: Partial<BundlePayload> = {}): BundlePayload => ({
  schema: 1,
  class: 'military',
  version: 7,
  issuedAt: new Date(now).toISOString(),
  expiresAt: new Date(now + 30 * 86_400_000).toISOString(),
  apps: [],
  exemptions: [],
  ...over,
})
const ORIGINAL = signBundle(payload(), key.privateKeyPem)
const SIG_BYTES = Buffer.from(ORIGINAL.signature.sig, 'base64')
const PAYLOAD_JSON = canonicalJson(ORIGINAL.payload)

describe('verifyBundle under mutation', () => {
  it('throws only BundleRejected and never accepts a changed bundle', () => {
    const sigFlip = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const b = Buffer.from(SIG_BYTES)
      b[i % b.length]! ^= x
      return { ...ORIGINAL, signature: { ...ORIGINAL.signature, sig: b.toString('base64') } }
    })
    const mutations = fc.oneof(
      edits.map((e) => mutate(ORIGINAL, e)),
      sigFlip,
      textEdits(JSON.stringify(ORIGINAL)).map((t) => {
        try {
          return JSON.parse(t) as unknown
        } catch {
          return t
        }
      }),
      // Re-signed by another key (of payloads a signer can encode at all: junk may hold NaN or a bigint, which
      // signBundle refuses), or a valid signature moved onto another payload.
      edits
        .map((e) => mutate(ORIGINAL.payload, e))
        .filter(encodable)
        .map((p) => signBundle(p as BundlePayload, other.privateKeyPem)),
      fc.integer({ min: 8, max: 100 }).map((v) => ({ ...ORIGINAL, payload: payload({ version: v }) })),
      fc.constantFrom('military', 'standard', 'Military').map((c) => ({ ...ORIGINAL, payload: payload({ class: c }) })),
      fc.anything(),
    )
    fc.assert(
      fc.property(mutations, (bundle) => {
        tally.bundles++
        let accepted: BundlePayload | undefined
        try {
          accepted = verifyBundle(bundle, key.publicKeyPem, { class: 'military', minVersion: 7, now: new Date(now) })
        } catch (err) {
          if (!(err instanceof BundleRejected)) throw new Error(`non-BundleRejected ${String(err)}`)
          return
        }
        tally.bundleAccepted++
        const b = bundle as typeof ORIGINAL
        // Accepted only when what the agent will enforce is exactly what was signed.
        expect(canonicalJson(accepted)).toBe(PAYLOAD_JSON)
        expect(Buffer.from(b.signature.sig, 'base64').equals(SIG_BYTES)).toBe(true)
      }),
      { numRuns: 10_000 * SCALE },
    )
  }, 120_000)
})

describe('clock skew between agent and server', () => {
  it('accepts within ±23 h of agent clock; a bundle issued over a day ahead is not-yet-valid', () => {
    const b = signBundle(payload(), key.privateKeyPem)
    for (const h of [-23, -12, 0, 12, 23]) {
      const agentNow = new Date(now + h * 3600_000)
      expect(verifyBundle(b, key.publicKeyPem, { class: 'military', now: agentNow }).version).toBe(7)
    }
    const ahead = signBundle(payload({ issuedAt: new Date(now + 25 * 3600_000).toISOString() }), key.privateKeyPem)
    let reason: string | undefined
    try {
      verifyBundle(ahead, key.publicKeyPem, { class: 'military', now: new Date(now) })
    } catch (err) {
      reason = (err as BundleRejected).reason
    }
    expect(reason).toBe('not-yet-valid')
    // Agent clock 2 days behind the server: the same fresh bundle looks issued in the future.
    expect(() => verifyBundle(b, key.publicKeyPem, { now: new Date(now - 48 * 3600_000) })).toThrow(BundleRejected)
  })
})
