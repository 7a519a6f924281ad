// The matcher: a pure function from collector rows to findings. Rules are compiled once into lookup tables so the
// hot scan loop does map lookups, not list scans. Signals rank by specificity like Santa's rules.
import type { CollectNeeds, Os, Row } from '../agent/collectors/types.js'
import { globToRegExp, normalizePath } from './glob.js'
import { type Cidr, inCidr, parseCidr, parseIp } from './net.js'
import type { Action, BundleApp, Exemption } from './schema.js'

export type Signal =
  | 'sha256'
  | 'team-id'
  | 'signer'
  | 'bundle-id'
  | 'package'
  | 'uninstall-key'
  | 'appx-family'
  | 'binary-marker'
  | 'pe-product'
  | 'publisher'
  | 'display-name'
  | 'process-name'
  | 'path'
  | 'artifact'
  | 'network'

/** Higher is more specific: hash > signer/team id > bundle/package id > binary marker > path > name. */
export const SPECIFICITY: Record<Signal, number> = {
  sha256: 100,
  'team-id': 90,
  signer: 85,
  'bundle-id': 70,
  package: 70,
  'uninstall-key': 70,
  'appx-family': 70,
  'binary-marker': 50,
  'pe-product': 40,
  publisher: 35,
  'display-name': 30,
  'process-name': 20,
  path: 25,
  network: 15,
  artifact: 10,
}

export interface Finding {
  appId: string
  appName: string
  policy: string
  signal: Signal
  specificity: number
  /** The rule value that matched (a name, hash, CIDR, ...). */
  matched: string
  /** Stable key for what was found, e.g. `process:4242`, `package:deb:telegram-desktop`. */
  subject: string
  actions: Action[]
  message?: string
  /** Set when an exemption applies: actions are then reduced to `report`. */
  exempted?: string
  /** The evidence: the collector row as it was seen. */
  row: Row
}

export interface Matcher {
  needs: CollectNeeds
  match(row: Row): Finding[]
  matchAll(rows: readonly Row[]): Finding[]
}

export interface MatcherOptions {
  /** This device, for device-specific exemptions. */
  deviceId?: string
  exemptions?: readonly Exemption[]
  now?: Date
}

type Hit = { app: number; signal: Signal; matched: string }
type Index = Map<string, Hit[]>

function add(index: Index, key: string, hit: Hit) {
  const list = index.get(key)
  if (list) list.push(hit)
  else index.set(key, [hit])
}

function basename(p: string): string {
  const n = normalizePath(p)
  return n.slice(n.lastIndexOf('/') + 1)
}

/** The first word of a desktop entry's Exec line, without `env VAR=x` prefixes or quotes. */
function execTarget(exec: string): string | undefined {
  const words = exec.match(/"[^"]*"|\S+/g) ?? []
  let i = 0
  if (words[0] === 'env' || words[0]?.endsWith('/env')) {
    i = 1
    while (words[i]?.includes('=')) i++
  }
  return words[i]?.replace(/^"|"$/g, '')
}

// Linux comm is the first 15 bytes of the name: a longer name can only be matched by its exe or argv[0].
const COMM_MAX = 15

export function subjectOf(row: Row): string {
  switch (row.kind) {
    case 'process':
      return `process:${row.pid}`
    case 'package':
      return `package:${row.manager}:${row.name}${row.user ? `:${row.user}` : ''}`
    case 'windows-program':
      return `windows-program:${row.hive}${row.sid ? `\\${row.sid}` : ''}\\${row.keyName}`
    case 'appx':
      return `appx:${row.packageFullName}${row.user ? `:${row.user}` : ''}`
    case 'connection':
      return `connection:${row.pid ?? '?'}:${row.remoteAddress}:${row.remotePort}`
    default:
      return `${row.kind}:${row.path}`
  }
}

export function compileMatcher(apps: readonly BundleApp[], os: Os, opts: MatcherOptions = {}): Matcher {
  // Names and ids compare case-insensitively where the OS does (Windows, macOS); Linux names are exact.
  const fold = os === 'linux' ? (s: string) => s : (s: string) => s.toLowerCase()
  const lower = (s: string) => s.toLowerCase()
  const names: Index = new Map()
  const exact: Index = new Map() // keys prefixed by signal family: sha256:, team:, signer:, bundle:, pkg:, ...
  const paths: { re: RegExp; hit: Hit }[] = []
  const artifacts: { re: RegExp; hit: Hit }[] = []
  const cidrs: { cidr: Cidr; hit: Hit }[] = []
  const markers = new Map<string, Hit[]>()

  apps.forEach((app, i) => {
    const m = app.match
    for (const n of m.processNames ?? []) add(names, fold(n), { app: i, signal: 'process-name', matched: n })
    for (const h of m.sha256 ?? []) add(exact, `sha256:${lower(h)}`, { app: i, signal: 'sha256', matched: h })
    for (const t of m.teamIds ?? []) add(exact, `team:${t}`, { app: i, signal: 'team-id', matched: t })
    for (const s of m.signers ?? []) add(exact, `signer:${lower(s)}`, { app: i, signal: 'signer', matched: s })
    for (const b of m.bundleIds ?? []) add(exact, `bundle:${lower(b)}`, { app: i, signal: 'bundle-id', matched: b })
    for (const [mgr, list] of Object.entries(m.packages ?? {})) {
      for (const p of list ?? []) add(exact, `pkg:${mgr}:${p}`, { app: i, signal: 'package', matched: `${mgr}:${p}` })
      // Flatpak ids double as desktop-entry ids (org.telegram.desktop.desktop).
      if (mgr === 'flatpak')
        for (const p of list ?? []) add(exact, `bundle:${lower(p)}`, { app: i, signal: 'bundle-id', matched: p })
    }
    const w = m.windows ?? {}
    for (const k of w.uninstallKeys ?? [])
      add(exact, `ukey:${lower(k)}`, { app: i, signal: 'uninstall-key', matched: k })
    for (const d of w.displayNames ?? [])
      add(exact, `dname:${lower(d)}`, { app: i, signal: 'display-name', matched: d })
    for (const p of w.publishers ?? []) add(exact, `pub:${lower(p)}`, { app: i, signal: 'publisher', matched: p })
    for (const f of w.appxFamilies ?? []) add(exact, `appx:${lower(f)}`, { app: i, signal: 'appx-family', matched: f })
    for (const p of w.peProductNames ?? []) add(exact, `pe:${lower(p)}`, { app: i, signal: 'pe-product', matched: p })
    for (const mk of m.binaryMarkers ?? []) add(markers, mk, { app: i, signal: 'binary-marker', matched: mk })
    for (const p of m.paths ?? []) paths.push({ re: globToRegExp(p, os), hit: { app: i, signal: 'path', matched: p } })
    for (const a of m.artifacts ?? []) {
      artifacts.push({ re: globToRegExp(a, os), hit: { app: i, signal: 'artifact', matched: a } })
    }
    for (const c of m.network?.cidrs ?? []) {
      const cidr = parseCidr(c)
      if (cidr) cidrs.push({ cidr, hit: { app: i, signal: 'network', matched: c } })
    }
  })

  const needs: CollectNeeds = {
    hashes: [...exact.keys()].some((k) => k.startsWith('sha256:')),
    markers: [...markers.keys()],
    artifacts: [...new Set(apps.flatMap((a) => a.match.artifacts ?? []))],
    names: [...new Set(apps.flatMap((a) => a.match.processNames ?? []).map(lower))],
  }

  // Expiry is checked when a row matches, not only now: a daemon keeps one matcher until the next bundle, and an
  // exemption that lapses in between must stop applying by itself (also offline).
  const exemptions = (opts.exemptions ?? [])
    .filter((e) => !e.device || e.device === opts.deviceId)
    .map((e) => ({ e, until: Date.parse(e.expiresAt) }))
    .filter(({ until }) => until > (opts.now ?? new Date()).getTime())
  const exemptionFor = (appId: string) => {
    const now = (opts.now ?? new Date()).getTime()
    return exemptions.find(({ e, until }) => until > now && (!e.apps || e.apps.length === 0 || e.apps.includes(appId)))
      ?.e
  }

  function fileHits(hits: Hit[], f: { sha256?: string; markers?: string[] }) {
    if (f.sha256) hits.push(...(exact.get(`sha256:${lower(f.sha256)}`) ?? []))
    for (const mk of f.markers ?? []) hits.push(...(markers.get(mk) ?? []))
  }
  function pathHits(hits: Hit[], path: string | undefined, list = paths) {
    if (!path) return
    const p = normalizePath(path)
    for (const { re, hit } of list) if (re.test(p)) hits.push(hit)
  }
  const lookup = (hits: Hit[], key: string) => {
    const found = exact.get(key)
    if (found) hits.push(...found)
  }

  function hitsFor(row: Row): Hit[] {
    const hits: Hit[] = []
    switch (row.kind) {
      case 'process': {
        const candidates = new Set<string>()
        if (row.exe) candidates.add(basename(row.exe))
        if (row.argv?.[0]) candidates.add(basename(row.argv[0]))
        if (!row.exe && (os !== 'linux' || row.name.length < COMM_MAX)) candidates.add(row.name)
        for (const c of candidates) hits.push(...(names.get(fold(c)) ?? []))
        fileHits(hits, row)
        if (row.teamId) lookup(hits, `team:${row.teamId}`)
        if (row.signer) lookup(hits, `signer:${lower(row.signer)}`)
        if (row.bundleId) lookup(hits, `bundle:${lower(row.bundleId)}`)
        if (row.peProductName) lookup(hits, `pe:${lower(row.peProductName)}`)
        pathHits(hits, row.exe)
        break
      }
      case 'package':
        lookup(hits, `pkg:${row.manager}:${row.name}`)
        break
      case 'app-bundle':
        if (row.bundleId) lookup(hits, `bundle:${lower(row.bundleId)}`)
        if (row.teamId) lookup(hits, `team:${row.teamId}`)
        if (row.signer) lookup(hits, `signer:${lower(row.signer)}`)
        fileHits(hits, row)
        pathHits(hits, row.path)
        break
      case 'windows-program':
        lookup(hits, `ukey:${lower(row.keyName)}`)
        if (row.displayName) lookup(hits, `dname:${lower(row.displayName)}`)
        if (row.publisher) lookup(hits, `pub:${lower(row.publisher)}`)
        break
      case 'appx':
        lookup(hits, `appx:${lower(row.packageFamilyName)}`)
        break
      case 'executable':
        hits.push(...(names.get(fold(basename(row.path))) ?? []))
        fileHits(hits, row)
        if (row.peProductName) lookup(hits, `pe:${lower(row.peProductName)}`)
        pathHits(hits, row.path)
        break
      case 'desktop-entry': {
        lookup(hits, `bundle:${lower(row.desktopId)}`)
        const target = row.exec ? execTarget(row.exec) : undefined
        if (target) hits.push(...(names.get(fold(basename(target))) ?? []))
        break
      }
      case 'artifact':
        pathHits(hits, row.path, artifacts)
        break
      case 'connection': {
        const ip = parseIp(row.remoteAddress)
        if (ip) for (const { cidr, hit } of cidrs) if (inCidr(ip, cidr)) hits.push(hit)
        break
      }
    }
    return hits
  }

  function match(row: Row): Finding[] {
    const hits = hitsFor(row)
    if (hits.length === 0) return []
    // One finding per app: the most specific signal that matched this row.
    const best = new Map<number, Hit>()
    for (const h of hits) {
      const cur = best.get(h.app)
      if (!cur || SPECIFICITY[h.signal] > SPECIFICITY[cur.signal]) best.set(h.app, h)
    }
    const subject = subjectOf(row)
    return [...best.values()].map((h) => {
      const app = apps[h.app]!
      const exemption = exemptionFor(app.id)
      return {
        appId: app.id,
        appName: app.name,
        policy: app.policy,
        signal: h.signal,
        specificity: SPECIFICITY[h.signal],
        matched: h.matched,
        subject,
        actions: exemption ? ['report'] : app.actions,
        ...(app.message ? { message: app.message } : {}),
        ...(exemption ? { exempted: `${exemption.reason} (approved by ${exemption.approvedBy})` } : {}),
        row,
      }
    })
  }

  return {
    needs,
    match,
    matchAll: (rows) => rows.flatMap(match),
  }
}
