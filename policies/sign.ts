// Ed25519 signatures over a bundle's canonical JSON, and the checks an agent makes before trusting a bundle.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { Compile } from 'typebox/compile'
import { canonicalJson } from './canonical.js'
import { type BundlePayload, type SignedBundle, SignedBundle as SignedBundleSchema } from './schema.js'

const checkSigned = Compile(SignedBundleSchema)

export type RejectReason = 'malformed' | 'signature' | 'class' | 'rollback' | 'expired' | 'not-yet-valid'

export class BundleRejected extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message)
    this.name = 'BundleRejected'
  }
}

export function generateSigningKey(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}

/** A short, stable id for a public key (first 8 bytes of the SHA-256 of its DER), so rotation is visible. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('hex').slice(0, 16)
}

export function signBundle(payload: BundlePayload, privateKeyPem: string): SignedBundle {
  const key = createPrivateKey(privateKeyPem)
  const sig = sign(null, Buffer.from(canonicalJson(payload)), key).toString('base64')
  return {
    payload,
    signature: {
      alg: 'ed25519',
      keyId: keyIdOf(createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString()),
      sig,
    },
  }
}

// Allowed clock difference between server and agent when checking issue time.
const SKEW_MS = 24 * 3600_000

/**
 * Verify a bundle as received (unknown JSON): shape, signature by the pinned key, class, no rollback, not expired.
 * Returns the payload only when every check passes.
 */
export function verifyBundle(
  bundle: unknown,
  publicKeyPem: string,
  expect: { class?: string; minVersion?: number; now?: Date } = {},
): BundlePayload {
  if (!checkSigned.Check(bundle)) {
    const first = [...checkSigned.Errors(bundle)][0]
    throw new BundleRejected('malformed', `bundle is malformed: ${first?.instancePath || '/'} ${first?.message ?? ''}`)
  }
  const { payload, signature } = bundle
  const pinnedId = keyIdOf(publicKeyPem)
  if (signature.keyId !== pinnedId) {
    // Verification would fail anyway; naming both keys makes a server key rotation obvious to whoever reads the log.
    throw new BundleRejected('signature', `bundle is signed by key ${signature.keyId}, pinned key is ${pinnedId}`)
  }
  let ok = false
  try {
    ok = verify(
      null,
      Buffer.from(canonicalJson(payload)),
      createPublicKey(publicKeyPem),
      Buffer.from(signature.sig, 'base64'),
    )
  } catch {
    ok = false
  }
  if (!ok) throw new BundleRejected('signature', 'bundle signature does not verify with the pinned policy key')
  if (expect.class !== undefined && payload.class !== expect.class) {
    throw new BundleRejected('class', `bundle is for class "${payload.class}", this device is "${expect.class}"`)
  }
  if (expect.minVersion !== undefined && payload.version < expect.minVersion) {
    throw new BundleRejected(
      'rollback',
      `bundle version ${payload.version} is older than accepted ${expect.minVersion}`,
    )
  }
  const now = (expect.now ?? new Date()).getTime()
  if (Date.parse(payload.expiresAt) <= now) {
    throw new BundleRejected('expired', `bundle expired at ${payload.expiresAt}`)
  }
  if (Date.parse(payload.issuedAt) > now + SKEW_MS) {
    throw new BundleRejected('not-yet-valid', `bundle issued in the future (${payload.issuedAt}); check the clock`)
  }
  return payload
}
