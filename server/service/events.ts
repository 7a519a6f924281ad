// Server events for integrations: one in-process stream that the SIEM file, webhooks and metrics subscribe to.
// Emitting is synchronous, cheap and never throws, so the hot paths (reports, enrollment) can call it inline; every
// subscriber that needs I/O queues the event and does the work later.
import { createWriteStream, type WriteStream } from 'node:fs'
import type { ReportBody, ReportFinding } from '../protocol.js'
import type { Assessed } from './reports.js'

export interface BundleRef {
  class: string
  version: number
}

export interface ExemptionView {
  id: string
  app: string
  device: string | null
  class: string | null
  reason: string
  approvedBy: string
  createdAt: string | null
  createdBy: string | null
  expiresAt: string | null
  revokedAt: string | null
  revokedBy: string | null
  status: 'active' | 'expired' | 'revoked'
}

export interface ViolationData {
  deviceId: string
  hostname: string | null
  class: string
  appId: string
  appName: string | null
  policy: string | null
  signal: string
  matched: string | null
  subject: string | null
  reportId: string
  scannedAt: string
  actions: { action: string; result: string }[]
}

export interface SilentData {
  deviceId: string
  hostname: string
  class: string
  lastSeen: string
  silentAfterSec: number
}

export type BusEvent =
  /**
   * A report accepted from a device (after it was stored); `duplicate` = a retry of one already stored. `findingStatus`
   * is assessed once here for every subscriber (null for a duplicate, or if the report does not assess).
   */
  | {
      type: 'report'
      deviceId: string
      class: string
      body: ReportBody
      duplicate: boolean
      findingStatus: Assessed['findingStatus'] | null
    }
  | { type: 'enrollment'; deviceId: string; class: string; hostname: string; os: string; agentVersion: string }
  | { type: 'policy.push'; actor: string; policySetVersion: number; bundles: BundleRef[] }
  | { type: 'exemption.grant' | 'exemption.revoke'; actor: string; exemption: ExemptionView; bundles: BundleRef[] }
  | ({ type: 'violation.new' } & ViolationData)
  | ({ type: 'device.silent' } & SilentData)

export type WebhookEvent = 'violation.new' | 'device.silent'
export const WEBHOOK_EVENTS: readonly WebhookEvent[] = ['violation.new', 'device.silent']

type Log = { error: (o: object, m: string) => void }

export class EventBus {
  private handlers: ((e: BusEvent) => void)[] = []

  constructor(private readonly log: Log) {}

  on(handler: (e: BusEvent) => void) {
    this.handlers.push(handler)
  }

  emit(e: BusEvent) {
    for (const h of this.handlers) {
      try {
        h(e)
      } catch (err) {
        this.log.error({ err, event: e.type }, 'event subscriber failed')
      }
    }
  }

  /** Route hook: returns its argument so an enroll handler can stay one expression. */
  enrolled<T extends { deviceId: string; class: string }>(
    r: T,
    body: { hostname: string; os: string; agentVersion: string },
  ) {
    this.emit({ type: 'enrollment', deviceId: r.deviceId, class: r.class, ...pick(body) })
    return r
  }

  /** `findingStatus`: as ingestion assessed the report (subscribers do not assess it again). */
  reported(
    deviceId: string,
    cls: string,
    body: ReportBody,
    duplicate: boolean,
    findingStatus: Assessed['findingStatus'],
  ) {
    if (this.handlers.length === 0) return
    this.emit({
      type: 'report',
      deviceId,
      class: cls,
      body,
      duplicate,
      findingStatus: duplicate ? null : findingStatus,
    })
  }

  pushed(
    actor: string,
    r: { dryRun: boolean; policySetVersion: number; classes: { class: string; newVersion: number | null }[] },
  ) {
    if (r.dryRun) return
    const bundles = r.classes.flatMap((c) => (c.newVersion === null ? [] : [{ class: c.class, version: c.newVersion }]))
    this.emit({ type: 'policy.push', actor, policySetVersion: r.policySetVersion, bundles })
  }
}

const pick = (b: { hostname: string; os: string; agentVersion: string }) => ({
  hostname: b.hostname,
  os: b.os,
  agentVersion: b.agentVersion,
})

/** The fields of a finding that events, webhooks and the SIEM stream carry. Pure. */
export const findingFields = (f: ReportFinding) => ({
  appId: f.appId,
  appName: f.appName ?? null,
  policy: f.policy ?? null,
  signal: f.signal,
  matched: f.matched ?? null,
  subject: f.subject ?? null,
})

/** The JSON-lines records for one event (a report becomes one line per finding and per action). Pure. */
export function eventLines(e: BusEvent, now = new Date()): Record<string, unknown>[] {
  const time = now.toISOString()
  if (e.type !== 'report') return [{ time, ...e }]
  if (e.duplicate) return []
  const { body } = e
  const status = e.findingStatus ?? []
  const apps = new Map(body.findings.map((f) => [f.id, f.appId]))
  const base = { deviceId: e.deviceId, class: e.class, reportId: body.reportId, scannedAt: body.scannedAt }
  const lines: Record<string, unknown>[] = body.findings.map((f, i) => ({
    time,
    type: 'finding',
    ...base,
    findingId: f.id,
    ...findingFields(f),
    status: status[i] ?? null,
    evidence: f.evidence ?? {},
  }))
  for (const a of body.actions) {
    lines.push({
      time,
      type: 'action',
      ...base,
      findingId: a.finding ?? null,
      appId: a.finding ? (apps.get(a.finding) ?? null) : null,
      action: a.action,
      result: a.result,
      message: a.message ?? null,
      at: a.at ?? null,
    })
  }
  return lines
}

/**
 * `--events-file PATH|-`: every event as one JSON line (appended; `-` = stdout). A SIEM that stops reading must not
 * grow the server without bound: past 64 MiB waiting to be written, lines are dropped and counted.
 */
export class EventFile {
  private readonly out: NodeJS.WritableStream & { writableLength: number }
  private readonly owned: WriteStream | undefined
  dropped = 0
  written = 0

  constructor(path: string, log: Log) {
    if (path === '-') {
      this.out = process.stdout
    } else {
      this.owned = createWriteStream(path, { flags: 'a', mode: 0o640 })
      this.owned.on('error', (err) => log.error({ err, path }, 'events file write failed'))
      this.out = this.owned
    }
  }

  handle(e: BusEvent) {
    for (const line of eventLines(e)) {
      if (this.out.writableLength > 64 * 1024 * 1024) {
        this.dropped++
        continue
      }
      this.out.write(`${JSON.stringify(line)}\n`)
      this.written++
    }
  }

  async close() {
    const s = this.owned
    if (s) await new Promise<void>((resolve) => s.end(resolve))
  }
}
