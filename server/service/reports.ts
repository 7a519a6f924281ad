// Report and heartbeat ingestion with group commit: concurrent submissions are collected for a few milliseconds and
// written in one transaction, and each caller is acknowledged only after that transaction has committed (so a 202
// means durable). One fsync per batch instead of per report is what makes thousands of reports/s possible with
// synchronous=FULL. A batch that fails is retried one operation at a time, so one bad report cannot sink the rest.
// SQLite batches go to the writer thread of storage/sqlite-ingest.ts (prepared statements, own connection);
// PostgreSQL batches are multi-row inserts and one multi-row update below. While one batch is written the next
// one collects.
import { sql } from 'kysely'
import type { HeartbeatBody, ReportAction, ReportBody, ReportFinding } from '../protocol.js'
import type { Db, Storage } from '../storage/db.js'
import type { StoredStatus } from '../storage/schema.js'
import type { HeartbeatWrite, IngestWrite, IngestWriter, Outcome, ReportWrite } from '../storage/sqlite-ingest.js'
import { ApiError, badRequest } from './util.js'

// Actions that take the app off the device; `report` and `notify` change nothing on it.
const ENFORCING = new Set(['kill', 'quarantine', 'uninstall', 'block-network'])

export interface Assessed {
  status: Exclude<StoredStatus, 'pending' | 'revoked'>
  open: number
  findingStatus: ('open' | 'remediated' | 'exempted')[]
  actionsByFinding: Map<string, ReportAction[]>
}

/**
 * A finding is remediated when it had enforcing actions and every one of them succeeded; otherwise it is open. One
 * the agent marks exempted (its signed bundle carried an exemption) is neither: it does not make the device
 * noncompliant.
 */
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
  let remediated = 0
  const findingStatus = findings.map((f) => {
    if (typeof f.evidence?.exempted === 'string') return 'exempted' as const
    const enforcing = (actionsByFinding.get(f.id) ?? []).filter((a) => ENFORCING.has(a.action))
    const done = enforcing.length > 0 && enforcing.every((a) => a.result === 'success')
    if (done) remediated++
    else open++
    return done ? ('remediated' as const) : ('open' as const)
  })
  const status = open > 0 ? 'noncompliant' : remediated > 0 ? 'remediated' : 'compliant'
  return { status, open, findingStatus, actionsByFinding }
}

type Done = (err: Error | null, result?: { duplicate: boolean }) => void
type Op = { w: IngestWrite; done: Done }

const chunk = <T>(list: T[], n: number): T[][] => {
  const out: T[][] = []
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n))
  return out
}

/** PostgreSQL: multi-row inserts through Kysely, one transaction per batch. */
class KyselyWriter implements IngestWriter {
  readonly mode = 'pool'
  constructor(private readonly db: Db) {}
  write(ops: IngestWrite[]) {
    return this.db.transaction().execute((trx) => writeBatch(trx, ops))
  }
  async close() {}
}

export interface IngestOptions {
  /** How long the first submission of a batch waits for company (only when nothing is being written; 0 = the
   * submissions of the same event-loop turn). */
  delayMs: number
  maxBatch: number
}

export class Ingestor {
  private queue: Op[] = []
  private timer: { cancel(): void } | undefined
  private inFlight = 0
  private flushes = new Set<Promise<void>>()
  private closed = false
  private readonly writer: IngestWriter
  private readonly maxInFlight: number
  private readonly delayMs: number
  batches = 0
  written = 0

  constructor(
    storage: Pick<Storage, 'db' | 'ingest'>,
    private readonly opts: IngestOptions,
    private readonly log: { error: (o: object, m: string) => void },
  ) {
    this.writer = storage.ingest ?? new KyselyWriter(storage.db)
    this.maxInFlight = this.writer.maxInFlight ?? 1
    // A writer that queues batches itself (the SQLite thread) batches naturally while it is busy; waiting for company
    // when it is idle would only add latency.
    this.delayMs = this.maxInFlight > 1 ? 0 : opts.delayMs
  }

  /** Resolves once durably stored; with the per-finding statuses so event subscribers need not assess it again. */
  async submitReport(
    deviceId: string,
    cls: string,
    body: ReportBody,
  ): Promise<{ duplicate: boolean; findingStatus: Assessed['findingStatus'] }> {
    const a = assess(body.findings, body.actions)
    const scannedAt = Date.parse(body.scannedAt)
    const at = Date.now()
    // A report dated far ahead would count as "latest" forever and hide every real report after it.
    if (scannedAt > at + 86_400_000) throw badRequest('scannedAt is more than a day in the future; check the clock')
    const r = await this.enqueue({
      kind: 'report',
      deviceId,
      class: cls,
      body,
      status: a.status,
      open: a.open,
      findingStatus: a.findingStatus,
      actionsByFinding: a.actionsByFinding,
      scannedAt,
      at,
    })
    return { duplicate: r.duplicate, findingStatus: a.findingStatus }
  }

  submitHeartbeat(deviceId: string, body: HeartbeatBody): Promise<{ duplicate: boolean }> {
    return this.enqueue({ kind: 'heartbeat', deviceId, body, at: Date.now() })
  }

  private enqueue(w: IngestWrite): Promise<{ duplicate: boolean }> {
    if (this.closed) return Promise.reject(new ApiError(503, 'shutting_down', 'server is shutting down; retry'))
    return new Promise((resolve, reject) => {
      this.queue.push({ w, done: (err, r) => (err ? reject(err) : resolve(r!)) })
      this.schedule()
    })
  }

  private schedule() {
    if (this.timer || this.inFlight >= this.maxInFlight || this.queue.length === 0) return
    // With a batch already being written, whatever queues now waits for it anyway: go as soon as a slot is free.
    if (this.inFlight > 0 || this.queue.length >= this.opts.maxBatch) this.startFlush()
    else if (this.delayMs > 0) {
      const t = setTimeout(() => this.startFlush(), this.delayMs)
      this.timer = { cancel: () => clearTimeout(t) }
    } else {
      const t = setImmediate(() => this.startFlush())
      this.timer = { cancel: () => clearImmediate(t) }
    }
  }

  private startFlush() {
    this.timer = undefined
    const batch = this.queue.splice(0, this.opts.maxBatch)
    if (batch.length === 0) return
    this.inFlight++
    const p: Promise<void> = this.flush(batch).finally(() => this.flushes.delete(p))
    this.flushes.add(p)
  }

  private settle(op: Op, r: Outcome) {
    if (r === 'conflict') op.done(new ApiError(409, 'conflict', 'reportId was already used by another device'))
    else op.done(null, { duplicate: r === 'duplicate' })
  }

  private async flush(batch: Op[]) {
    let results: Outcome[] | undefined
    let error: unknown
    try {
      results = await this.writer.write(batch.map((op) => op.w))
    } catch (err) {
      error = err
    }
    // Hand the writer its next batch before answering this one (the answers are event-loop work it need not wait for).
    this.inFlight--
    this.schedule()
    if (results) {
      this.batches++
      this.written += batch.length
      for (let i = 0; i < batch.length; i++) this.settle(batch[i]!, results[i]!)
      return
    }
    if (batch.length === 1) {
      this.log.error({ err: error }, 'report write failed')
      batch[0]!.done(new ApiError(503, 'storage_error', 'could not store the report; retry later'))
      return
    }
    // Isolate the failing operation: retry each alone.
    for (const op of batch) {
      try {
        const [r] = await this.writer.write([op.w])
        this.settle(op, r!)
      } catch (e) {
        this.log.error({ err: e }, 'report write failed')
        op.done(new ApiError(503, 'storage_error', 'could not store the report; retry later'))
      }
    }
  }

  /** Write out everything queued (shutdown). */
  async drain() {
    this.closed = true
    this.timer?.cancel()
    this.timer = undefined
    while (this.flushes.size > 0 || this.queue.length > 0) {
      if (this.queue.length > 0 && this.inFlight < this.maxInFlight) this.startFlush()
      else await Promise.race(this.flushes)
    }
  }
}

async function writeBatch(trx: Db, ops: IngestWrite[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = ops.map(() => 'stored')
  const first = new Map<string, number>()
  const reports: { op: ReportWrite; i: number }[] = []
  ops.forEach((op, i) => {
    if (op.kind !== 'report') return
    const prev = first.get(op.body.reportId)
    if (prev !== undefined) {
      // Same reportId twice in one batch (a retry racing the original): store once.
      outcomes[i] = (ops[prev] as ReportWrite).deviceId === op.deviceId ? 'duplicate' : 'conflict'
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
          open_findings: op.open,
          status: op.status,
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
      actions: JSON.stringify(op.actionsByFinding.get(f.id) ?? []),
      status: op.findingStatus[k]!,
      scanned_at: op.scannedAt,
    })),
  )
  for (const part of chunk(findingRows, 1000)) await trx.insertInto('findings').values(part).execute()

  // Device status follows the newest report by scan time; a late report from an outbox only refreshes last_seen.
  // One statement for every device of the batch (one round trip, not one per device): every SET reads the row's old
  // values, so `newer` means the same in each of them.
  const latest = new Map<string, ReportWrite>()
  for (const op of fresh) {
    const cur = latest.get(op.deviceId)
    if (!cur || op.scannedAt >= cur.scannedAt) latest.set(op.deviceId, op)
  }
  if (latest.size > 0) {
    const rows = [...latest.values()].map(
      (op) =>
        sql`(${op.deviceId}, ${op.status}, ${op.open}::int, ${op.scannedAt}::bigint, ${op.body.reportId},
        ${op.body.bundleVersion}::int, ${op.at}::bigint)`,
    )
    const newer = sql`(d.status <> 'revoked' and (d.last_report_at is null or d.last_report_at <= v.scanned_at))`
    await sql`update devices as d set
        status = case when ${newer} then v.status else d.status end,
        open_findings = case when ${newer} then v.open else d.open_findings end,
        last_report_at = case when ${newer} then v.scanned_at else d.last_report_at end,
        last_report_id = case when ${newer} then v.report_id else d.last_report_id end,
        bundle_version = case when ${newer} then v.bundle_version else d.bundle_version end,
        last_seen = case when ${newer} then v.at else greatest(d.last_seen, v.at) end
      from (values ${sql.join(rows)}) as v (id, status, open, scanned_at, report_id, bundle_version, at)
      where d.id = v.id`.execute(trx)
  }
  // Heartbeats likewise, the last of each device in the batch winning (as it would one statement at a time).
  const beats = new Map<string, HeartbeatWrite>()
  for (const op of ops) if (op.kind === 'heartbeat') beats.set(op.deviceId, op)
  if (beats.size > 0) {
    const rows = [...beats.values()].map(
      (op) =>
        sql`(${op.deviceId}, ${op.at}::bigint, ${op.body.bundleVersion}::int, ${op.body.agentVersion},
        ${JSON.stringify(op.body.health)})`,
    )
    await sql`update devices as d set last_seen = v.at, last_heartbeat_at = v.at, bundle_version = v.bundle_version,
        agent_version = v.agent_version, health = v.health
      from (values ${sql.join(rows)}) as v (id, at, bundle_version, agent_version, health)
      where d.id = v.id`.execute(trx)
  }
  return outcomes
}
