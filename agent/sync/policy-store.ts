// The last good bundle: what the agent enforces. A candidate from the server replaces it only after every check
// (pinned-key signature, class, version never lower than the highest accepted, not expired); a rejection leaves the
// current bundle in force and is recorded for the next report.
//
// Expiry of the bundle already in force: it KEEPS enforcing (with a health warning) when it expires, e.g. on a
// device offline for longer than the bundle TTL. Expiry protects against replaying an old bundle to a device; it
// must not let a ban lapse because the device cannot reach the server.
import { readFile } from 'node:fs/promises'
import { canonicalJson } from '../../policies/canonical.js'
import { BundleRejected, type RejectReason, verifyBundle } from '../../policies/sign.js'
import type { BundlePayload, SignedBundle } from '../../policies/schema.js'
import { errnoCode, errorMessage, writeFileAtomic } from './fsutil.js'
import { statePaths } from './paths.js'

export interface PolicyMeta {
  /** Highest version ever accepted: the rollback floor, kept apart from bundle.json so replacing that file with an
   * older signed bundle is still refused. */
  acceptedVersion: number
  acceptedAt?: string
  /** ETag of the last bundle the server sent (accepted or rejected): the next poll asks only for something newer. */
  etag?: string
  lastRejection?: Rejection
}

export interface Rejection {
  at: string
  reason: RejectReason | 'unreadable'
  message: string
  version?: number
  class?: string
}

export interface ActiveBundle {
  payload: BundlePayload
  signed: SignedBundle
  /** In force past its expiry (see the header comment). */
  expired: boolean
}

export type OfferResult =
  | { status: 'accepted'; bundle: ActiveBundle; previousVersion?: number }
  | { status: 'unchanged'; bundle: ActiveBundle }
  | { status: 'rejected'; rejection: Rejection }

export interface Expectations {
  publicKeyPem: string
  class: string
}

function claimed(bundle: unknown): { version?: number; class?: string; issuedAt?: string; expiresAt?: string } {
  const p = (bundle as { payload?: Record<string, unknown> } | null)?.payload
  if (!p || typeof p !== 'object') return {}
  return {
    ...(typeof p.version === 'number' ? { version: p.version } : {}),
    ...(typeof p.class === 'string' ? { class: p.class } : {}),
    ...(typeof p.issuedAt === 'string' ? { issuedAt: p.issuedAt } : {}),
    ...(typeof p.expiresAt === 'string' ? { expiresAt: p.expiresAt } : {}),
  }
}

/**
 * Judge a candidate bundle against the one in force (pure apart from the clock you pass). Same signed content as
 * the current bundle: `unchanged` (a server without ETags, or a replayed response, must not re-run enforcement).
 */
export function judgeBundle(
  candidate: unknown,
  expect: Expectations,
  state: { acceptedVersion: number; current?: ActiveBundle },
  now: Date,
): OfferResult {
  try {
    const payload = verifyBundle(candidate, expect.publicKeyPem, {
      class: expect.class,
      minVersion: state.acceptedVersion,
      now,
    })
    const signed = candidate as SignedBundle
    const cur = state.current
    if (cur && cur.payload.version === payload.version && canonicalJson(cur.signed) === canonicalJson(signed)) {
      return { status: 'unchanged', bundle: cur }
    }
    return {
      status: 'accepted',
      bundle: { payload, signed, expired: false },
      ...(cur ? { previousVersion: cur.payload.version } : {}),
    }
  } catch (err) {
    const c = claimed(candidate)
    const rejection: Rejection = {
      at: now.toISOString(),
      reason: err instanceof BundleRejected ? err.reason : 'malformed',
      message: errorMessage(err),
      ...(c.version !== undefined ? { version: c.version } : {}),
      ...(c.class !== undefined ? { class: c.class } : {}),
    }
    return { status: 'rejected', rejection }
  }
}

/**
 * Re-verify the bundle stored on disk at startup. Everything is checked as for a new bundle except time: expiry only
 * marks it `expired` and an issue time in the future (the clock went back) is tolerated; it keeps enforcing. The
 * version must be at least the recorded floor.
 */
export function verifyStored(
  stored: unknown,
  expect: Expectations,
  acceptedVersion: number,
  now: Date,
): ActiveBundle | Rejection {
  const r = judgeBundle(stored, expect, { acceptedVersion }, now)
  if (r.status !== 'rejected') return { ...r.bundle, expired: false }
  // Time alone never lifts a ban that passed every check on arrival: an expired bundle keeps enforcing (marked), and
  // one "issued in the future" means the clock went back since (dead RTC battery, bad NTP; health warns). Everything
  // else (signature, class, version) is checked again as of a moment inside its validity window.
  const expired = r.rejection.reason === 'expired'
  if (!expired && r.rejection.reason !== 'not-yet-valid') return r.rejection
  const { issuedAt, expiresAt } = claimed(stored)
  const inside = expired ? Date.parse(expiresAt ?? '') - 1 : Date.parse(issuedAt ?? '')
  const again = judgeBundle(stored, expect, { acceptedVersion }, new Date(inside))
  if (again.status === 'rejected') return again.rejection
  return { ...again.bundle, expired }
}

/** The on-disk side: bundle.json (the signed bundle as received) and policy.json (floor, etag, last rejection). */
export class PolicyStore {
  private meta: PolicyMeta = { acceptedVersion: 0 }
  private active: ActiveBundle | undefined
  /** Why the stored bundle could not be used at load, if it could not. */
  loadProblem: string | undefined
  /** Set while an accepted bundle is enforced from memory because the state dir refused it (disk full, read-only). */
  persistError: string | undefined
  private unsaved: SignedBundle | undefined

  constructor(
    readonly stateDir: string,
    private readonly expect: Expectations,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  get current(): ActiveBundle | undefined {
    return this.active
  }

  get metadata(): Readonly<PolicyMeta> {
    return this.meta
  }

  /** Load policy.json and the last good bundle; returns it (undefined when there is none or it fails checks). */
  async load(): Promise<ActiveBundle | undefined> {
    const paths = statePaths(this.stateDir)
    this.meta = await readMeta(paths.policy)
    let stored: unknown
    try {
      stored = JSON.parse(await readFile(paths.bundle, 'utf8'))
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.loadProblem = `cannot read ${paths.bundle}: ${errorMessage(err)}`
      this.active = undefined
      return undefined
    }
    const r = verifyStored(stored, this.expect, this.meta.acceptedVersion, this.clock())
    if ('payload' in r) {
      this.active = r
      this.loadProblem = undefined
      // A policy.json lost or reset must not lower the floor below what is on disk.
      if (r.payload.version > this.meta.acceptedVersion) this.meta.acceptedVersion = r.payload.version
    } else {
      this.active = undefined
      this.loadProblem = `stored bundle rejected (${r.reason}): ${r.message}`
    }
    return this.active
  }

  /** Whether the bundle in force has expired by now (it still enforces; health warns). */
  expiredNow(): boolean {
    if (!this.active) return false
    return Date.parse(this.active.payload.expiresAt) <= this.clock().getTime()
  }

  /** Judge a bundle from the server; persist it when accepted, record the rejection otherwise. */
  async offer(candidate: unknown, etag?: string): Promise<OfferResult> {
    const now = this.clock()
    const r = judgeBundle(
      candidate,
      this.expect,
      { acceptedVersion: this.meta.acceptedVersion, current: this.active },
      now,
    )
    if (etag !== undefined) this.meta.etag = etag
    if (r.status === 'accepted') {
      // Bundle first, then the floor: a crash in between leaves a newer bundle and an older floor, which load() fixes.
      // A state dir that cannot be written must not stop a new ban: enforce from memory, write when it recovers.
      await this.persist(r.bundle.signed)
      this.active = r.bundle
      this.meta.acceptedVersion = r.bundle.payload.version
      this.meta.acceptedAt = now.toISOString()
      this.loadProblem = undefined
    } else if (r.status === 'rejected') {
      this.meta.lastRejection = r.rejection
    }
    await this.saveMeta().catch(() => {
      // The floor in memory still protects this run; health reports the state dir problem elsewhere.
    })
    return r
  }

  private async persist(signed: SignedBundle) {
    try {
      await writeFileAtomic(statePaths(this.stateDir).bundle, JSON.stringify(signed), 0o600)
      this.unsaved = undefined
      this.persistError = undefined
    } catch (err) {
      this.unsaved = signed
      this.persistError = `cannot store the accepted bundle (${errnoCode(err) ?? 'error'}): ${errorMessage(err)}; enforced from memory`
    }
  }

  /** Write a bundle that was accepted while the state dir was not writable (no-op otherwise). */
  async retryPersist() {
    if (!this.unsaved) return
    await this.persist(this.unsaved)
    if (!this.unsaved) await this.saveMeta().catch(() => {})
  }

  async setEtag(etag: string | undefined) {
    if (etag === this.meta.etag) return
    if (etag === undefined) delete this.meta.etag
    else this.meta.etag = etag
    await this.saveMeta().catch(() => {})
  }

  private async saveMeta() {
    await writeFileAtomic(statePaths(this.stateDir).policy, `${JSON.stringify(this.meta, null, 2)}\n`, 0o600)
  }
}

export async function readMeta(path: string): Promise<PolicyMeta> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as PolicyMeta
    if (typeof m.acceptedVersion !== 'number' || !Number.isFinite(m.acceptedVersion)) return { acceptedVersion: 0 }
    return m
  } catch {
    return { acceptedVersion: 0 }
  }
}
