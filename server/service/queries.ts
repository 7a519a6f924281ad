// Read-side queries for the security team: compliance summary, devices, findings, rollout, audit log.
// `unknown` is derived from last_seen against a cutoff (3 heartbeat intervals) at query time.

import type { AuditQuery, DevicesQuery, FindingsQuery } from '../protocol.js'
import type { Db } from '../storage/db.js'
import type { Status } from '../storage/schema.js'
import { iso, parseJson, parseTime } from './util.js'

export class QueryService {
  constructor(
    private readonly db: Db,
    private readonly silentAfterMs: number,
  ) {}

  cutoff(now = Date.now()) {
    return now - this.silentAfterMs
  }

  /** One GROUP BY over the (class, status, last_seen) index. */
  async compliance() {
    const cutoff = this.cutoff()
    const rows = await this.db
      .selectFrom('devices')
      .select(['class', 'status'])
      .select((eb) => [
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>(eb.case().when('last_seen', '<', cutoff).then(1).else(0).end()).as('silent'),
      ])
      .where('status', '<>', 'revoked')
      .groupBy(['class', 'status'])
      .execute()
    const classes = (await this.db.selectFrom('classes').select('name').orderBy('name').execute()).map((r) => r.name)
    const empty = () => ({ total: 0, compliant: 0, noncompliant: 0, remediated: 0, unknown: 0, pending: 0 })
    const by = new Map<string, ReturnType<typeof empty>>(classes.map((c) => [c, empty()]))
    const totals = empty()
    for (const r of rows) {
      const n = Number(r.n)
      const silent = Number(r.silent ?? 0)
      const c = by.get(r.class) ?? empty()
      by.set(r.class, c)
      for (const t of [c, totals]) {
        t.total += n
        t.unknown += silent
        t[r.status as Exclude<Status, 'unknown'>] += n - silent
      }
    }
    return {
      generatedAt: new Date().toISOString(),
      unknownAfterSec: Math.round(this.silentAfterMs / 1000),
      classes: [...by].map(([cls, c]) => ({ class: cls, ...c })),
      totals,
    }
  }

  async devices(q: DevicesQuery) {
    const now = Date.now()
    const cutoff = this.cutoff(now)
    let query = this.db
      .selectFrom('devices')
      .selectAll()
      .orderBy('class')
      .orderBy('hostname')
      .orderBy('id')
      .limit(q.limit ?? 1000)
      .offset(q.offset ?? 0)
    if (q.class) query = query.where('class', '=', q.class)
    if (q.status === 'unknown') query = query.where('status', '<>', 'revoked').where('last_seen', '<', cutoff)
    else if (q.status === 'revoked') query = query.where('status', '=', 'revoked')
    else if (q.status) query = query.where('status', '=', q.status).where('last_seen', '>=', cutoff)
    else query = query.where('status', '<>', 'revoked')
    if (q.seenSince) query = query.where('last_seen', '>=', parseTime(q.seenSince, now, 'seenSince'))
    if (q.seenBefore) query = query.where('last_seen', '<', parseTime(q.seenBefore, now, 'seenBefore'))
    const rows = await query.execute()
    return rows.map((d) => ({
      id: d.id,
      hostname: d.hostname,
      class: d.class,
      status: (d.status !== 'revoked' && d.last_seen < cutoff ? 'unknown' : d.status) as Status | 'revoked',
      openFindings: d.open_findings,
      bundleVersion: d.bundle_version,
      os: d.os,
      agentVersion: d.agent_version,
      hardwareId: d.hardware_id,
      enrolledAt: iso(d.enrolled_at),
      lastSeen: iso(d.last_seen),
      lastReportAt: iso(d.last_report_at),
      lastHeartbeatAt: iso(d.last_heartbeat_at),
      revokedAt: iso(d.revoked_at),
    }))
  }

  async device(id: string) {
    const d = await this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst()
    if (!d) return undefined
    const reports = await this.db
      .selectFrom('reports')
      .select(['report_id', 'scanned_at', 'received_at', 'bundle_version', 'findings', 'open_findings', 'status'])
      .where('device_id', '=', id)
      .orderBy('scanned_at', 'desc')
      .limit(20)
      .execute()
    const cutoff = this.cutoff()
    const health = parseJson<Record<string, unknown> | null>(d.health, null)
    return {
      id: d.id,
      hostname: d.hostname,
      class: d.class,
      status: d.status !== 'revoked' && d.last_seen < cutoff ? 'unknown' : d.status,
      openFindings: d.open_findings,
      bundleVersion: d.bundle_version,
      os: d.os,
      agentVersion: d.agent_version,
      hardwareId: d.hardware_id,
      health,
      ...clockSkew(health),
      enrolledAt: iso(d.enrolled_at),
      lastSeen: iso(d.last_seen),
      lastReportAt: iso(d.last_report_at),
      lastHeartbeatAt: iso(d.last_heartbeat_at),
      revokedAt: iso(d.revoked_at),
      recentReports: reports.map((r) => ({
        reportId: r.report_id,
        scannedAt: iso(r.scanned_at),
        receivedAt: iso(r.received_at),
        bundleVersion: r.bundle_version,
        findings: r.findings,
        openFindings: r.open_findings,
        status: r.status,
      })),
    }
  }

  async findings(q: FindingsQuery) {
    const now = Date.now()
    let query = this.db
      .selectFrom('findings as f')
      .innerJoin('devices as d', 'd.id', 'f.device_id')
      .select([
        'f.scanned_at',
        'f.device_id',
        'd.hostname',
        'f.class',
        'f.app_id',
        'f.app_name',
        'f.policy',
        'f.signal',
        'f.matched',
        'f.subject',
        'f.status',
        'f.actions',
        'f.evidence',
        'f.report_id',
      ])
      .orderBy('f.scanned_at', 'desc')
      .orderBy('f.seq', 'desc')
      .limit(q.limit ?? 1000)
    if (q.app) query = query.where('f.app_id', '=', q.app)
    if (q.class) query = query.where('f.class', '=', q.class)
    if (q.device) query = query.where('f.device_id', '=', q.device)
    if (q.status) query = query.where('f.status', '=', q.status)
    if (q.since) query = query.where('f.scanned_at', '>=', parseTime(q.since, now, 'since'))
    if (q.until) query = query.where('f.scanned_at', '<', parseTime(q.until, now, 'until'))
    const rows = await query.execute()
    return rows.map((r) => ({
      scannedAt: iso(r.scanned_at),
      deviceId: r.device_id,
      hostname: r.hostname,
      class: r.class,
      appId: r.app_id,
      appName: r.app_name,
      policy: r.policy,
      signal: r.signal,
      matched: r.matched,
      subject: r.subject,
      status: r.status,
      actions: parseJson<{ action: string; result: string }[]>(r.actions, []),
      evidence: parseJson<Record<string, unknown>>(r.evidence, {}),
      reportId: r.report_id,
    }))
  }

  /** Which bundle version each class's devices run, next to the class's current version. */
  async rollout(current: (cls: string) => number | undefined) {
    const rows = await this.db
      .selectFrom('devices')
      .select(['class', 'bundle_version'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '<>', 'revoked')
      .groupBy(['class', 'bundle_version'])
      .orderBy('class')
      .orderBy('bundle_version')
      .execute()
    const by = new Map<string, { version: number | null; devices: number }[]>()
    for (const r of rows) {
      const list = by.get(r.class) ?? []
      list.push({ version: r.bundle_version, devices: Number(r.n) })
      by.set(r.class, list)
    }
    const classes = (await this.db.selectFrom('classes').select('name').orderBy('name').execute()).map((r) => r.name)
    return {
      classes: classes.map((cls) => {
        const versions = by.get(cls) ?? []
        const cur = current(cls) ?? null
        const total = versions.reduce((s, v) => s + v.devices, 0)
        const onCurrent = versions.filter((v) => v.version === cur).reduce((s, v) => s + v.devices, 0)
        return { class: cls, currentVersion: cur, devices: total, onCurrent, versions }
      }),
    }
  }

  async audit(q: AuditQuery) {
    const now = Date.now()
    let query = this.db
      .selectFrom('audit')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(q.limit ?? 1000)
    if (q.since) query = query.where('at', '>=', parseTime(q.since, now, 'since'))
    if (q.until) query = query.where('at', '<', parseTime(q.until, now, 'until'))
    if (q.action) query = query.where('action', '=', q.action)
    const rows = await query.execute()
    return rows.map((r) => ({
      seq: Number(r.seq),
      at: iso(r.at),
      actor: r.actor,
      role: r.role,
      action: r.action,
      target: r.target,
      details: parseJson<Record<string, unknown>>(r.details, {}),
    }))
  }
}

/** The agent measures its clock against ours (HTTP Date) and sends it in health; past ±1 day the detail warns. */
function clockSkew(health: Record<string, unknown> | null): { clockSkewSec: number | null; clockWarning?: string } {
  const sec = typeof health?.clockSkewSec === 'number' ? health.clockSkewSec : null
  if (sec === null || Math.abs(sec) <= 86_400) return { clockSkewSec: sec }
  const days = (Math.abs(sec) / 86_400).toFixed(1)
  return { clockSkewSec: sec, clockWarning: `device clock is ${days} days ${sec > 0 ? 'ahead' : 'behind'}` }
}
