// Keeps the host's network block (hosts-file block + firewall rules) equal to what the bundle in force asks for.
// Runs on start and on every accepted bundle, so a rule dropped from the policy is removed from the host. What was
// last applied is recorded in the state dir: an unchanged request does nothing, and a host that never had a block is
// never touched (no firewall command runs on a machine whose policy has no block-network rule).
import { readFile } from 'node:fs/promises'
import { networkRequest } from '../actions/index.js'
import {
  applyNetworkBlock,
  type NetworkBlockOptions,
  type NetworkBlockOutcome,
  normalizeDomains,
} from '../actions/block-network.js'
import type { BundlePayload } from '../../policies/schema.js'
import type { Os } from '../collectors/types.js'
import { writeFileAtomic } from './fsutil.js'
import { byCodeUnit } from '../../policies/canonical.js'

interface Applied {
  domains: string[]
  groups: { app: string; cidrs: string[] }[]
}

const EMPTY: Applied = { domains: [], groups: [] }

/** Canonical form (the hosts block's own domain normalisation, sorted CIDRs): reordering is not a change (pure). */
export function canonicalRequest(bundle: BundlePayload | undefined): Applied {
  const req = networkRequest(bundle)
  return {
    domains: normalizeDomains(req.domains),
    groups: req.groups
      .map((g) => ({ app: g.app, cidrs: [...g.cidrs].sort() }))
      .sort((a, b) => byCodeUnit(a.app, b.app)),
  }
}

export class NetworkBlockSync {
  constructor(
    private readonly file: string,
    private readonly os: Os,
    private readonly opts: Omit<NetworkBlockOptions, 'os' | 'stale'> = {},
  ) {}

  private async applied(): Promise<Applied | undefined> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as Applied
    } catch {
      return undefined
    }
  }

  /** Bring the host to the bundle's request. Returns undefined when nothing had to change. */
  async sync(bundle: BundlePayload | undefined): Promise<NetworkBlockOutcome | undefined> {
    const want = canonicalRequest(bundle)
    const had = (await this.applied()) ?? EMPTY
    if (JSON.stringify(want) === JSON.stringify(had)) return undefined
    const outcome = await applyNetworkBlock(want, {
      ...this.opts,
      os: this.os,
      // netsh rules are per app: the ones applied before and no longer asked for are deleted by name.
      stale: had.groups.map((g) => g.app).filter((a) => !want.groups.some((g) => g.app === a)),
    })
    // Only a fully applied state is recorded, so a failure is retried on the next bundle or restart.
    if (outcome.ok) await writeFileAtomic(this.file, JSON.stringify(want))
    return outcome
  }
}
