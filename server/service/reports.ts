// Report and heartbeat ingestion with group commit: concurrent submissions are collected for a few milliseconds and
// written in one transaction, and each caller is acknowledged only after that transaction has committed (so a 202
// means durable). One fsync per batch instead of per report is what makes thousands of reports/s possible with
// synchronous=FULL. A batch that fails is retried one operation at a time, so one bad report cannot sink the rest.
import type { HeartbeatBody, ReportAction, ReportBody, ReportFinding } from '../protocol.js'
import type { Db } from '../storage/db.js'
import type { StoredStatus } from '../storage/schema.js'
import { ApiError, badRequest } from './util.js'

// Actions that take the app off the device; `report` and `notify` change nothing on it.
const ENFORCING = new Set(['kill', 'quarantine', 'uninstall', 'block-network'])

export interface Assessed {
  status: Exclude<StoredStatus, 'pending' | 'revoked'>
  open: number
  findingStatus: ('open' | 'remediated')[]
  actionsByFinding: Map<string, ReportAction[]>
}

/** A finding is remediated when it had enforcing actions and every one of them succeeded; otherwise it is open. */
export function assess(findings: readonly ReportFinding[], actions: readonly ReportAction[]): Assessed {
  const ids = new Set<string>()
  for (const f of findings) {
    if (ids.has(f.id)) throw badRequest(`findings: id "${f.id}" is used twice`)
    ids.add(f.id)
  }
  const actionsByFinding = new Map<string, ReportAction[]>()
  for (const a of actions) {
    if (a.finding === undefined) continue
    if (!ids.has(a.finding)) throw badRequest(`actions: finding "${a.finding}" is not in findings`)
    const list = actionsByFinding.get(a.finding) ?? []
    list.push(a)
    actionsByFinding.set(a.finding, list)
  }
  let open = 0
  const findingStatus = findings.map((f) => {
    const enforcing = (actionsByFinding.get(f.id) ?? []).filter((a) => ENFORCING.has(a.action))
    const done = enforcing.length > 0 && enforcing.every((a) => a.result === 'success')
    if (!done) open++
    return done ? ('remediated' as const) : ('open' as const)
  })
  const status = findings.length === 0 ? 'compliant' : open > 0 ? 'noncompliant' : 'remediated'
  return { status, open, findingStatus, actionsByFinding }
}

type ReportOp = {
  kind: 'report'
  deviceId: string
  class: string
  body: ReportBody
  assessed: Assessed
  scannedAt: number
  at: number
  done: (err: Error | null, result?: { duplicate: boolean }) => void
}
type HeartbeatOp = {
  kind: 'heartbeat'
  deviceId: string
  body: HeartbeatBody
  at: number
  done: (err: Error | null, result?: { duplicate: boolean }) => void
}
type Op = ReportOp | HeartbeatOp

const chunk = <T>(list: T[], n: number): T[][] => {
  const out: T[][] = []
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n))
  return out
}

export interface IngestOptions {
  /** How long the first submission of a batch waits for company. */
  delayMs: number
  maxBatch: number
}

export class Ingestor {
  private queue: Op[] = []
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined
  private closed = false
  batches = 0
  written = 0

  constructor(
    private readonly db: Db,
    private readonly opts: IngestOptions,
    private readonly log: { error: (o: object, m: string) => void },
  ) {}

  submitReport(deviceId: string, cls: string, body: ReportBody): Promise<{ duplicate: boolean }> {
    const assessed = assess(body.findings, body.actions)
    const scannedAt = Date.parse(body.scannedAt)
    const at = Date.now()
    // A report dated far ahead would count as "latest" forever and hide every real report after it.
    if (scannedAt > at + 86_400_000) throw badRequest('scannedAt is more than a day in the future; check the clock')
    return this.enqueue((done) => ({ kind: 'report', deviceId, class: cls, body, assessed, scannedAt, at, done }))
  }

  submitHeartbeat(deviceId: string, body: HeartbeatBody): Promise<{ duplicate: boolean }> {
    return this.enqueue((done) => ({ kind: 'heartbeat', deviceId, body, at: Date.now(), done }))
  }

  private enqueue(make: (done: Op['done']) => Op): Promise<{ duplicate: boolean }> {
    if (this.closed) return Promise.reject(new ApiError(503, 'shutting_down', 'server is shutting down; retry'))
    return new Promise((resolve, reject) => {
      this.queue.push(make((err, r) => (err ? reject(err) : resolve(r!))))
      this.schedule()
    })
  }

  private schedule() {
    if (this.flushing || this.timer) return
    const delay = this.queue.length >= this.opts.maxBatch ? 0 : this.opts.delayMs
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined
        if (this.queue.length > 0) this.schedule()
      })
    }, delay)
  }

  private async flush() {
    const batch = this.queue.splice(0, this.opts.maxBatch)
    if (batch.length === 0) return
    try {
      const results = await this.db.transaction().execute((trx) => writeBatch(trx, batch))
      this.batches++
      this.written += batch.length
      batch.forEach((op, i) => {
        const r = results[i]!
        if (r === 'conflict') op.done(new ApiError(409, 'conflict', 'reportId was already used by another device'))
        else op.done(null, { duplicate: r === 'duplicate' })
      })
    } catch (err) {
      if (batch.length === 1) {
        this.log.error({ err }, 'report write failed')
        batch[0]!.done(new ApiError(503, 'storage_error', 'could not store the report; retry later'))
        return
      }
      // Isolate the failing operation: retry each alone.
      for (const op of batch) {
        try {
          const [r] = await this.db.transaction().execute((trx) => writeBatch(trx, [op]))
          if (r === 'conflict') op.done(new ApiError(409, 'conflict', 'reportId was already used by another device'))
          else op.done(null, { duplicate: r === 'duplicate' })
        } catch (e) {
          this.log.error({ err: e }, 'report write failed')
          op.done(new ApiError(503, 'storage_error', 'could not store the report; retry later'))
        }
      }
    }
  }

  /** Write out everything queued (shutdown). */
  async drain() {
    this.closed = true
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    while (this.flushing || this.queue.length > 0) {
      if (this.flushing) await this.flushing
      else await this.flush()
    }
  }
}

type Outcome = 'stored' | 'duplicate' | 'conflict'

async function writeBatch(trx: Db, ops: Op[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = ops.map(() => 'stored')
  const first = new Map<string, number>()
  const reports: { op: ReportOp; i: number }[] = []
  ops.forEach((op, i) => {
    if (op.kind !== 'report') return
    const prev = first.get(op.body.reportId)
    if (prev !== undefined) {
      // Same reportId twice in one batch (a retry racing the original): store once.
      outcomes[i] = (ops[prev] as ReportOp).deviceId === op.deviceId ? 'duplicate' : 'conflict'
      return
    }
    first.set(op.body.reportId, i)
    reports.push({ op, i })
  })

  const inserted = new Set<string>()
  for (const part of chunk(reports, 500)) {
    const rows = await trx
      .insertInto('reports')
      .values(
        part.map(({ op }) => ({
          report_id: op.body.reportId,
          device_id: op.deviceId,
          class: op.class,
          bundle_version: op.body.bundleVersion,
          scanned_at: op.scannedAt,
          received_at: op.at,
          findings: op.body.findings.length,
          open_findings: op.assessed.open,
          status: op.assessed.status,
          actions: JSON.stringify(op.body.actions),
          inventory: JSON.stringify(op.body.inventory),
        })),
      )
      .onConflict((oc) => oc.column('report_id').doNothing())
      .returning('report_id')
      .execute()
    for (const r of rows) inserted.add(r.report_id)
  }
  const dups = reports.filter(({ op }) => !inserted.has(op.body.reportId))
  if (dups.length > 0) {
    const owners = new Map(
      (
        await trx
          .selectFrom('reports')
          .select(['report_id', 'device_id'])
          .where(
            'report_id',
            'in',
            dups.map(({ op }) => op.body.reportId),
          )
          .execute()
      ).map((r) => [r.report_id, r.device_id]),
    )
    for (const { op, i } of dups) outcomes[i] = owners.get(op.body.reportId) === op.deviceId ? 'duplicate' : 'conflict'
  }
  const fresh = reports.filter(({ op }) => inserted.has(op.body.reportId)).map(({ op }) => op)

  const findingRows = fresh.flatMap((op) =>
    op.body.findings.map((f, k) => ({
      report_id: op.body.reportId,
      device_id: op.deviceId,
      class: op.class,
      app_id: f.appId,
      app_name: f.appName ?? null,
      policy: f.policy ?? null,
      signal: f.signal,
      matched: f.matched ?? null,
      subject: f.subject ?? null,
      evidence: JSON.stringify(f.evidence ?? {}),
      actions: JSON.stringify(op.assessed.actionsByFinding.get(f.id) ?? []),
      status: op.assessed.findingStatus[k]!,
      scanned_at: op.scannedAt,
    })),
  )
  for (const part of chunk(findingRows, 1000)) await trx.insertInto('findings').values(part).execute()

  // Device status follows the newest report by scan time; a late report from an outbox only refreshes last_seen.
  const latest = new Map<string, ReportOp>()
  for (const op of fresh) {
    const cur = latest.get(op.deviceId)
    if (!cur || op.scannedAt >= cur.scannedAt) latest.set(op.deviceId, op)
  }
  for (const op of latest.values()) {
    const r = await trx
      .updateTable('devices')
      .set({
        status: op.assessed.status,
        open_findings: op.assessed.open,
        last_report_at: op.scannedAt,
        last_report_id: op.body.reportId,
        bundle_version: op.body.bundleVersion,
        last_seen: op.at,
      })
      .where('id', '=', op.deviceId)
      .where('status', '<>', 'revoked')
      .where((eb) => eb.or([eb('last_report_at', 'is', null), eb('last_report_at', '<=', op.scannedAt)]))
      .executeTakeFirst()
    if (r.numUpdatedRows === 0n) {
      await trx
        .updateTable('devices')
        .set({ last_seen: op.at })
        .where('id', '=', op.deviceId)
        .where('last_seen', '<', op.at)
        .execute()
    }
  }
  for (const op of ops) {
    if (op.kind !== 'heartbeat') continue
    await trx
      .updateTable('devices')
      .set({
        last_seen: op.at,
        last_heartbeat_at: op.at,
        bundle_version: op.body.bundleVersion,
        agent_version: op.body.agentVersion,
        health: JSON.stringify(op.body.health),
      })
      .where('id', '=', op.deviceId)
      .execute()
  }
  return outcomes
}
