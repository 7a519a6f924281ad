// Report and heartbeat bodies in the server's wire format (server/protocol.ts: flat scalar maps, bounded arrays),
// and the change tracker that decides when a report is worth sending. Pure: no I/O, the clock is passed in.
import type { Finding } from '../../policies/match.js'
import type { ActionResult } from '../actions/types.js'
import type { CollectorRun } from '../scan.js'

export const REPORTS_ROUTE = '/api/v1/reports'
export const HEARTBEAT_ROUTE = '/api/v1/heartbeat'

/**
 * Per-report limits: the protocol allows 1000 findings / 5000 actions / 48 scalars per map, but the server's body
 * limit (1 MB reports, 64 KB heartbeats) binds first, so reports are split smaller and evidence strings are capped.
 */
export const MAX_FINDINGS = 200
export const MAX_ACTIONS = 1000
const MAX_SCALARS = 48
const MAX_STRING = 1024
const KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/

export type Scalar = string | number | boolean | null
export type Scalars = Record<string, Scalar>

export interface WireFinding {
  id: string
  appId: string
  appName?: string
  policy?: string
  signal: string
  specificity?: number
  matched?: string
  subject?: string
  evidence?: Scalars
}

export interface WireAction {
  finding?: string
  action: ActionResult['action']
  result: 'success' | 'failed' | 'skipped' | 'pending'
  message?: string
  at?: string
}

export interface ReportBody extends Record<string, unknown> {
  bundleVersion: number
  scannedAt: string
  findings: WireFinding[]
  actions: WireAction[]
  inventory: Scalars
}

export interface HeartbeatBody extends Record<string, unknown> {
  bundleVersion: number
  agentVersion: string
  health: Scalars
}

/** A flat map the server accepts: valid keys, scalar values, strings capped, at most 48 entries (pure). */
export function toScalars(obj: Record<string, unknown>, limit = MAX_SCALARS, maxString = MAX_STRING): Scalars {
  const out: Scalars = {}
  let n = 0
  for (const [rawKey, v] of Object.entries(obj)) {
    if (n >= limit) break
    if (v === undefined) continue
    const key = rawKey.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)
    if (!KEY.test(key)) continue
    let value: Scalar
    if (v === null || typeof v === 'boolean') value = v
    else if (typeof v === 'number') value = Number.isFinite(v) ? v : null
    else if (typeof v === 'string') value = v.slice(0, maxString)
    else if (Array.isArray(v)) value = v.map(String).join(' ').slice(0, maxString)
    else value = JSON.stringify(v).slice(0, maxString)
    out[key] = value
    n++
  }
  return out
}

function toWireFinding(f: Finding, id: string): WireFinding {
  return {
    id,
    appId: f.appId,
    appName: f.appName.slice(0, 256),
    policy: f.policy.slice(0, 64),
    signal: f.signal,
    specificity: f.specificity,
    matched: f.matched.slice(0, 1024),
    subject: f.subject.slice(0, 4096),
    evidence: toScalars({ ...f.row, ...(f.exempted ? { exempted: f.exempted } : {}) }),
  }
}

const RESULT: Record<ActionResult['status'], WireAction['result']> = {
  done: 'success',
  noop: 'success',
  refused: 'skipped',
  failed: 'failed',
}

function toWireAction(a: ActionResult, finding?: string): WireAction {
  return {
    ...(finding ? { finding } : {}),
    action: a.action,
    result: RESULT[a.status],
    message: (a.reason ?? a.detail).slice(0, 2048),
    at: a.at,
  }
}

export const findingKey = (f: Pick<Finding, 'appId' | 'subject'>) => `${f.appId}|${f.subject}`

export interface ReportInput {
  bundleVersion: number
  scannedAt: string
  findings: readonly Finding[]
  actions: readonly ActionResult[]
  inventory?: Record<string, unknown>
}

/**
 * Report bodies for findings and their action results; split into several reports past the protocol's array
 * limits (actions follow their finding). reportId is added by the outbox.
 */
export function buildReports(input: ReportInput): ReportBody[] {
  const inventory = toScalars(input.inventory ?? {})
  const bySubject = new Map<string, ActionResult[]>()
  const orphans: ActionResult[] = []
  const keys = new Set(input.findings.map(findingKey))
  for (const a of input.actions) {
    const k = a.appId ? `${a.appId}|${a.subject}` : undefined
    if (k && keys.has(k)) {
      const list = bySubject.get(k)
      if (list) list.push(a)
      else bySubject.set(k, [a])
    } else orphans.push(a)
  }
  const out: ReportBody[] = []
  let cur: ReportBody | undefined
  const fresh = (): ReportBody => ({
    bundleVersion: input.bundleVersion,
    scannedAt: input.scannedAt,
    findings: [],
    actions: [],
    inventory,
  })
  input.findings.forEach((f, i) => {
    const acts = bySubject.get(findingKey(f)) ?? []
    bySubject.delete(findingKey(f))
    if (!cur || cur.findings.length >= MAX_FINDINGS || cur.actions.length + acts.length > MAX_ACTIONS) {
      cur = fresh()
      out.push(cur)
    }
    const id = `f${i + 1}`
    cur.findings.push(toWireFinding(f, id))
    for (const a of acts.slice(0, MAX_ACTIONS)) cur.actions.push(toWireAction(a, id))
  })
  for (const a of orphans) {
    if (!cur || cur.actions.length >= MAX_ACTIONS) {
      cur = fresh()
      out.push(cur)
    }
    cur.actions.push(toWireAction(a))
  }
  if (out.length === 0) out.push(fresh())
  return out
}

/** Inventory summary of a full scan: rows and errors per collector, flat. */
export function scanInventory(collectors: readonly CollectorRun[], extra: Record<string, unknown> = {}) {
  const inv: Record<string, unknown> = { ...extra }
  let rows = 0
  for (const c of collectors) {
    rows += c.rows
    inv[`rows.${c.name}`] = c.rows
    if (c.error) inv[`error.${c.name}`] = c.error
  }
  inv.rows = rows
  return inv
}

/**
 * Decides what a full scan reports: new findings, findings gone since the last scan, action results, and a full
 * summary at most every `summaryMs` (so an unchanged device sends a few small reports a day, not one per scan).
 */
export class ChangeTracker {
  private open = new Map<string, Finding>()
  private lastSummary = 0

  constructor(private readonly summaryMs = 6 * 3600_000) {}

  /** Findings currently open (from the last full scan plus the watcher since). */
  get current(): Finding[] {
    return [...this.open.values()]
  }

  /** Record findings the watcher saw between scans; returns those that are new. */
  add(findings: readonly Finding[]): Finding[] {
    const added: Finding[] = []
    for (const f of findings) {
      const k = findingKey(f)
      if (!this.open.has(k)) added.push(f)
      this.open.set(k, f)
    }
    return added
  }

  /** Drop findings remediated by an action (the process is gone), so the next scan does not call them resolved. */
  resolve(keys: Iterable<string>) {
    for (const k of keys) this.open.delete(k)
  }

  /**
   * Compare a full scan with what was open. `report`: send now; `full`: it is time for a periodic summary (send
   * every finding, not just the new ones).
   */
  scan(findings: readonly Finding[], hadActions: boolean, now: number) {
    const next = new Map(findings.map((f) => [findingKey(f), f]))
    const added = findings.filter((f) => !this.open.has(findingKey(f)))
    const resolved = [...this.open.keys()].filter((k) => !next.has(k))
    this.open = next
    const full = now - this.lastSummary >= this.summaryMs
    if (full) this.lastSummary = now
    return { added, resolved, full, report: full || hadActions || added.length > 0 || resolved.length > 0 }
  }

  /** Forget everything (a new bundle: every finding is re-evaluated and reported afresh). */
  reset() {
    this.open.clear()
    this.lastSummary = 0
  }
}
