// A readable diff between two versions of one class's bundle: apps (rules) added, removed and changed, with what
// changed in each (actions from -> to, match values added/removed per signal, message), and exemption changes.
import { canonicalJson } from '../../policies/canonical.js'
import type { BundleApp, BundlePayload } from '../../policies/schema.js'

export interface RuleChange {
  key: string
  name: string
  actions?: { from: string[]; to: string[] }
  match: { field: string; added: string[]; removed: string[] }[]
  message?: { from: string | null; to: string | null }
  renamed?: { from: string; to: string }
}

export interface BundleDiff {
  added: { key: string; name: string; actions: string[] }[]
  removed: { key: string; name: string; actions: string[] }[]
  changed: RuleChange[]
  exemptions: { added: number; removed: number }
  /** Same content (a re-signed bundle, e.g. before expiry). */
  same: boolean
}

const keyOf = (a: BundleApp) => `${a.policy}/${a.id}`

/** `{packages: {deb: [..]}}` -> `packages.deb: [..]`: every match signal as one flat list of values. */
function flatten(obj: unknown, prefix = '', out = new Map<string, string[]>()) {
  if (Array.isArray(obj)) out.set(prefix, obj.map(String))
  else if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out)
  } else if (obj !== undefined) out.set(prefix, [String(obj)])
  return out
}

function diffMatch(before: BundleApp['match'], after: BundleApp['match']) {
  const b = flatten(before)
  const a = flatten(after)
  const out: RuleChange['match'] = []
  for (const field of [...new Set([...b.keys(), ...a.keys()])].sort()) {
    const bv = new Set(b.get(field) ?? [])
    const av = new Set(a.get(field) ?? [])
    const added = [...av].filter((v) => !bv.has(v))
    const removed = [...bv].filter((v) => !av.has(v))
    if (added.length || removed.length) out.push({ field, added, removed })
  }
  return out
}

type Content = Pick<BundlePayload, 'apps' | 'exemptions'>

export function diffBundles(before: Content | undefined, after: Content): BundleDiff {
  const b = new Map((before?.apps ?? []).map((a) => [keyOf(a), a]))
  const a = new Map(after.apps.map((x) => [keyOf(x), x]))
  const added = [...a.values()]
    .filter((x) => !b.has(keyOf(x)))
    .map((x) => ({ key: keyOf(x), name: x.name, actions: x.actions }))
  const removed = [...b.values()]
    .filter((x) => !a.has(keyOf(x)))
    .map((x) => ({ key: keyOf(x), name: x.name, actions: x.actions }))
  const changed: RuleChange[] = []
  for (const [k, next] of a) {
    const prev = b.get(k)
    if (!prev) continue
    const c: RuleChange = { key: k, name: next.name, match: diffMatch(prev.match, next.match) }
    if (canonicalJson(prev.actions) !== canonicalJson(next.actions))
      c.actions = { from: prev.actions, to: next.actions }
    if ((prev.message ?? '') !== (next.message ?? ''))
      c.message = { from: prev.message ?? null, to: next.message ?? null }
    if (prev.name !== next.name) c.renamed = { from: prev.name, to: next.name }
    if (c.actions || c.message || c.renamed || c.match.length) changed.push(c)
  }
  const be = new Set((before?.exemptions ?? []).map((e) => canonicalJson(e)))
  const ae = new Set(after.exemptions.map((e) => canonicalJson(e)))
  const exemptions = {
    added: [...ae].filter((e) => !be.has(e)).length,
    removed: [...be].filter((e) => !ae.has(e)).length,
  }
  const same =
    before !== undefined &&
    !added.length &&
    !removed.length &&
    !changed.length &&
    !exemptions.added &&
    !exemptions.removed
  return {
    added: added.sort((x, y) => x.key.localeCompare(y.key)),
    removed: removed.sort((x, y) => x.key.localeCompare(y.key)),
    changed,
    exemptions,
    same,
  }
}
