// The SQLite hot path of report ingestion: one IMMEDIATE transaction per batch of reports and heartbeats, written with
// statements prepared once (Kysely compiles and prepares every query anew, which cost more than the inserts did). The
// writer runs in a worker thread with its own connection, so the inserts and each commit's fsync happen beside the
// event loop instead of on it; the main thread hands over ready-made statement parameters. A second thread copies the
// WAL into the database file as it grows (see backfill()), so the writer's own checkpoints stay short.
// Callers hear about a batch only after its COMMIT returned. Durability: in WAL mode a committed transaction is in the
// WAL file, which outlives kill -9 of the process with synchronous=NORMAL already; we keep FULL (an fsync per
// commit, i.e. per batch) so that an acknowledged report also survives a power cut or kernel crash. Measured here,
// FULL vs NORMAL made no difference the benchmark could resolve once the fsync was off the event loop.
// PostgreSQL keeps the Kysely path in service/reports.ts.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parentPort, Worker, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import type { HeartbeatBody, ReportAction, ReportBody } from '../protocol.js'
import type { StoredStatus } from './schema.js'

/** What a report contributes to the database once it has been validated and assessed (service/reports.ts). */
export interface ReportWrite {
  kind: 'report'
  deviceId: string
  class: string
  body: ReportBody
  status: Exclude<StoredStatus, 'pending' | 'revoked'>
  open: number
  findingStatus: ('open' | 'remediated' | 'exempted')[]
  /** Actions of each finding (by finding id). */
  actionsByFinding: Map<string, ReportAction[]>
  scannedAt: number
  at: number
}
export interface HeartbeatWrite {
  kind: 'heartbeat'
  deviceId: string
  body: HeartbeatBody
  at: number
}
export type IngestWrite = ReportWrite | HeartbeatWrite
export type Outcome = 'stored' | 'duplicate' | 'conflict'

/** Writes a batch in one transaction; rejects if the transaction failed (nothing of the batch was written). */
export interface IngestWriter {
  /** Where the writes run: a thread of their own, the event loop's, or a database pool's (logged at start). */
  readonly mode: 'thread' | 'inline' | 'pool'
  /** Batches it accepts before the first is done (it queues them itself); 1 when omitted. */
  readonly maxInFlight?: number
  /** It checkpoints the WAL itself, off the event loop: other connections must not (wal_autocheckpoint = 0). */
  readonly checkpoints?: boolean
  write(ops: IngestWrite[]): Promise<Outcome[]>
  close(): Promise<void>
}

/**
 * Settings of every connection to the database file (storage/db.ts opens the main one). `checkpointPages`: 0 = this
 * connection never checkpoints (the writer thread does; otherwise the commit that crosses the threshold copies the WAL
 * into the database file and fsyncs it on whatever thread committed, the event loop included).
 */
export function tuneSqlite(db: Database.Database, synchronous: 'FULL' | 'NORMAL', checkpointPages = 1000) {
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${synchronous}`)
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  db.pragma('cache_size = -65536')
  db.pragma(`wal_autocheckpoint = ${checkpointPages}`)
  // After a checkpoint lets the WAL restart, its file is cut back to this size (64 MiB) rather than kept at its peak.
  db.pragma('journal_size_limit = 67108864')
}

/**
 * The writer's checkpoint threshold in pages (~64 MiB): the size at which the WAL starts over. The checkpointer thread
 * has copied all but its last BACKFILL_MS of frames by then, so this checkpoint, which runs inside the commit that
 * crosses the threshold and so delays the reports waiting behind it, only finishes the job. A big WAL also means
 * fewer restarts (measured: a 1,000-page threshold cost ~1/3 more writer time per report).
 */
const WRITER_CHECKPOINT_PAGES = 16_000
/**
 * How often the checkpointer thread copies new WAL frames into the database file while there are any. Measured at
 * 5,000 reports/s: with the writer doing every checkpoint itself, each restart held its commit for 40-70 ms (the
 * p99); with the copying done beside it every 50 ms, 11-23 ms (every 100 ms was not enough, every 25 ms no better).
 */
const BACKFILL_MS = 50
/** With nothing new in the WAL it backs off, doubling up to this: an idle server is not woken 20 times a second. */
const BACKFILL_IDLE_MS = 1000

const REPORT_COLS = [
  'report_id',
  'device_id',
  'class',
  'bundle_version',
  'scanned_at',
  'received_at',
  'findings',
  'open_findings',
  'status',
  'actions',
  'inventory',
]
const FINDING_COLS = [
  'report_id',
  'device_id',
  'class',
  'app_id',
  'app_name',
  'policy',
  'signal',
  'matched',
  'subject',
  'evidence',
  'actions',
  'status',
  'scanned_at',
]
const insert = (table: string, cols: string[], tail = '') =>
  `insert into ${table} (${cols.join(', ')}) values (${cols.map(() => '?').join(', ')})${tail}`

/**
 * A write as statement parameters, worked out on the main thread: flat arrays of strings and numbers cost little to
 * hand to the writer thread (a structured clone of the parsed report cost more than the writer's inserts), and the
 * JSON encoding of the stored columns is done by the thread that has time for it.
 */
export type Rows = { report: ReportParams; findings: unknown[][]; status: ReportParams } | { heartbeat: unknown[] }
/** reports columns in REPORT_COLS order: [report_id, device_id, ..., scanned_at (4), received_at (5), ...]. */
type ReportParams = unknown[]

export function toRows(op: IngestWrite): Rows {
  if (op.kind === 'heartbeat') {
    const b = op.body
    return { heartbeat: [op.at, op.at, b.bundleVersion, b.agentVersion, JSON.stringify(b.health), op.deviceId] }
  }
  const b = op.body
  const report = [
    b.reportId,
    op.deviceId,
    op.class,
    b.bundleVersion,
    op.scannedAt,
    op.at,
    b.findings.length,
    op.open,
    op.status,
    JSON.stringify(b.actions),
    JSON.stringify(b.inventory),
  ]
  const findings = b.findings.map((f, k) => [
    b.reportId,
    op.deviceId,
    op.class,
    f.appId,
    f.appName ?? null,
    f.policy ?? null,
    f.signal,
    f.matched ?? null,
    f.subject ?? null,
    JSON.stringify(f.evidence ?? {}),
    JSON.stringify(op.actionsByFinding.get(f.id) ?? []),
    op.findingStatus[k]!,
    op.scannedAt,
  ])
  // The device update's parameters (setStatus below).
  const status = [op.status, op.open, op.scannedAt, b.reportId, b.bundleVersion, op.at, op.deviceId, op.scannedAt]
  return { report, findings, status }
}

/** Synchronous batch writer over one better-sqlite3 connection (used inside the worker, or in-thread as fallback). */
export class SqliteBatchWriter {
  private readonly db: Database.Database
  private readonly run: (ops: Rows[]) => Outcome[]

  constructor(file: string, synchronous: 'FULL' | 'NORMAL', checkpointPages: number) {
    const db = new Database(file)
    this.db = db
    tuneSqlite(db, synchronous, checkpointPages)
    const insReport = db.prepare(insert('reports', REPORT_COLS, ' on conflict (report_id) do nothing'))
    const ownerOf = db.prepare('select device_id from reports where report_id = ?').pluck()
    const insFinding = db.prepare(insert('findings', FINDING_COLS))
    // Device status follows the newest report by scan time; a late report from an outbox only refreshes last_seen.
    const setStatus = db.prepare(
      `update devices set status = ?, open_findings = ?, last_report_at = ?, last_report_id = ?, bundle_version = ?,
       last_seen = ? where id = ? and status <> 'revoked' and (last_report_at is null or last_report_at <= ?)`,
    )
    const touch = db.prepare('update devices set last_seen = ? where id = ? and last_seen < ?')
    const heartbeat = db.prepare(
      `update devices set last_seen = ?, last_heartbeat_at = ?, bundle_version = ?, agent_version = ?, health = ?
       where id = ?`,
    )

    const writeAll = (ops: Rows[]): Outcome[] => {
      const outcomes: Outcome[] = ops.map(() => 'stored')
      const first = new Map<unknown, unknown>() // reportId -> deviceId, within this batch
      const latest = new Map<unknown, ReportParams>() // deviceId -> its newest report's setStatus parameters
      ops.forEach((op, i) => {
        if (!('report' in op)) return
        const [reportId, deviceId, , , scannedAt] = op.report
        const prev = first.get(reportId)
        if (prev !== undefined) {
          // Same reportId twice in one batch (a retry racing the original): store once.
          outcomes[i] = prev === deviceId ? 'duplicate' : 'conflict'
          return
        }
        first.set(reportId, deviceId)
        if (insReport.run(op.report).changes === 0) {
          outcomes[i] = ownerOf.get(reportId) === deviceId ? 'duplicate' : 'conflict'
          return
        }
        for (const f of op.findings) insFinding.run(f)
        const cur = latest.get(deviceId)
        if (!cur || (scannedAt as number) >= (cur[2] as number)) latest.set(deviceId, op.status)
      })
      for (const p of latest.values()) {
        if (setStatus.run(p).changes === 0) touch.run(p[5], p[6], p[5])
      }
      for (const op of ops) if ('heartbeat' in op) heartbeat.run(op.heartbeat)
      return outcomes
    }
    // IMMEDIATE: take the write lock at BEGIN, so the transaction never has to upgrade (and fail) mid-way.
    this.run = db.transaction(writeAll).immediate
  }

  write(ops: Rows[]): Outcome[] {
    return this.run(ops)
  }

  close() {
    if (this.db.open) this.db.close()
  }
}

type Request = { id: number; ops: Rows[] }
type Reply = { id: number; outcomes?: Outcome[]; error?: { message: string; code?: string } }

type WorkerData = { file: string; synchronous: 'FULL' | 'NORMAL'; role: 'writer' | 'checkpointer' }

/** Worker side (sqlite-ingest.worker.js): answer each batch with its outcomes once it has committed. */
export function serve() {
  const { file, synchronous, role } = workerData as WorkerData
  const port = parentPort!
  if (role === 'checkpointer') return backfill(file, synchronous)
  const writer = new SqliteBatchWriter(file, synchronous, WRITER_CHECKPOINT_PAGES)
  port.on('message', (m: Request | 'close') => {
    if (m === 'close') {
      writer.close()
      port.close()
      return
    }
    let reply: Reply
    try {
      reply = { id: m.id, outcomes: writer.write(m.ops) }
    } catch (err) {
      const e = err as { message?: string; code?: string }
      reply = { id: m.id, error: { message: e.message ?? String(err), code: e.code } }
    }
    port.postMessage(reply)
  })
}

/**
 * The checkpointer thread: every BACKFILL_MS, copy the WAL frames written since into the database file. A PASSIVE
 * checkpoint takes no write lock, so this runs beside the writer. It cannot let the WAL start over (that needs every
 * frame copied, which a writer that never pauses never allows): the writer's own checkpoint at its threshold does,
 * with little left to copy. It also covers what the main connection writes (which never checkpoints). With nothing
 * new it backs off to BACKFILL_IDLE_MS.
 */
function backfill(file: string, synchronous: 'FULL' | 'NORMAL') {
  const db = new Database(file)
  tuneSqlite(db, synchronous, 0)
  let wait = BACKFILL_MS
  let frames = -1
  let timer: NodeJS.Timeout
  const run = () => {
    const start = performance.now()
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[]
    // The WAL's frame count moves with every commit (and restarts): unchanged means nothing was written since.
    wait = r?.log === frames ? Math.min(wait * 2, BACKFILL_IDLE_MS) : BACKFILL_MS
    frames = r?.log ?? -1
    timer = setTimeout(run, Math.max(0, wait - (performance.now() - start)))
  }
  timer = setTimeout(run, BACKFILL_MS)
  parentPort!.on('message', (m) => {
    if (m !== 'close') return
    clearTimeout(timer)
    db.close()
    parentPort!.close()
  })
}

/** In-thread writer: the fallback when no thread can be started, or when INTERDICT_SQLITE_WRITER=inline. */
class InlineWriter implements IngestWriter {
  readonly mode = 'inline'
  constructor(private readonly writer: SqliteBatchWriter) {}
  async write(ops: IngestWrite[]) {
    return this.writer.write(ops.map(toRows))
  }
  async close() {
    this.writer.close()
  }
}

class WorkerWriter implements IngestWriter {
  readonly mode = 'thread'
  // Two: while the thread writes one batch the next is already waiting in its queue, so it never idles on us.
  readonly maxInFlight = 2
  readonly checkpoints = true
  private next = 1
  private pending = new Map<number, { w: Worker; resolve: (o: Outcome[]) => void; reject: (e: Error) => void }>()
  private worker: Worker | undefined
  private checkpointer: Worker | undefined
  private closed = false

  constructor(
    /** The threads' entry file, or its whole source (the single-file binary has no file to start it from). */
    private readonly entry: URL | string,
    private readonly data: { file: string; synchronous: 'FULL' | 'NORMAL' },
    private readonly onError: (err: Error) => void,
  ) {
    this.start()
    // At once, not at the first report: it also checkpoints what the main connection writes.
    this.startCheckpointer()
  }

  private thread(role: WorkerData['role']) {
    return new Worker(this.entry, { workerData: { ...this.data, role }, eval: typeof this.entry === 'string' })
  }

  /** The checkpointer never keeps the process alive, and comes back a second after a crash. */
  private startCheckpointer() {
    const w = this.thread('checkpointer')
    w.on('error', this.onError)
    w.on('exit', () => {
      if (this.checkpointer === w) this.checkpointer = undefined
      this.restartSoon(() => this.checkpointer || this.startCheckpointer())
    })
    w.unref()
    this.checkpointer = w
  }

  /** A second after a thread ended, unless the writer is closed by then (`ensure` starts it if it is not running). */
  private restartSoon(ensure: () => unknown) {
    if (!this.closed) setTimeout(() => this.closed || ensure(), 1000).unref()
  }

  /** Starts the writer thread (again after a crash: the batches in flight fail with 503 and the agents resend them). */
  private start(): Worker {
    const w = this.thread('writer')
    const fail = (err: Error) => {
      if (this.worker === w) this.worker = undefined
      for (const [id, p] of this.pending) {
        if (p.w !== w) continue
        this.pending.delete(id)
        p.reject(err)
      }
      // WAL restarts stop with it: bring it back even if no report comes to do so.
      this.restartSoon(() => this.worker || this.start())
    }
    w.on('message', (m: Reply) => {
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if (this.pending.size === 0) w.unref()
      if (m.outcomes) p.resolve(m.outcomes)
      else p.reject(Object.assign(new Error(m.error?.message ?? 'write failed'), { code: m.error?.code }))
    })
    w.on('error', (err) => {
      this.onError(err)
      fail(err)
    })
    w.on('exit', (code) => fail(new Error(`report writer thread exited (${code})`)))
    // Idle, it must not keep the process alive (the storage's close() ends it); with writes pending, it must.
    w.unref()
    this.worker = w
    return w
  }

  write(ops: IngestWrite[]): Promise<Outcome[]> {
    if (this.closed) return Promise.reject(new Error('report writer is closed'))
    const w = this.worker ?? this.start()
    const id = this.next++
    if (this.pending.size === 0) w.ref()
    return new Promise((resolve, reject) => {
      this.pending.set(id, { w, resolve, reject })
      w.postMessage({ id, ops: ops.map(toRows) } satisfies Request)
    })
  }

  async close() {
    this.closed = true
    const threads = [this.worker, this.checkpointer].filter((w) => w !== undefined)
    this.worker = this.checkpointer = undefined
    await Promise.all(
      threads.map((w) => {
        const exited = new Promise((resolve) => w.once('exit', resolve))
        // Referenced until it has exited: otherwise a process with nothing else pending ends while it still closes.
        w.ref()
        w.postMessage('close')
        return exited
      }),
    )
  }
}

/** The writer thread's bundled source: defined by the single-file server build (build/server-native.ts) only. */
declare const __INTERDICT_SQLITE_THREAD__: string | undefined

/**
 * The writer for a SQLite file: a worker thread, started from sqlite-ingest.worker.js in a checkout (it registers
 * tsx) or from the source the server binary carries; in-thread only if neither is there.
 * INTERDICT_SQLITE_WRITER=inline forces the in-thread writer.
 */
export function openSqliteWriter(
  file: string,
  synchronous: 'FULL' | 'NORMAL',
  onError: (err: Error) => void,
): IngestWriter {
  if (process.env.INTERDICT_SQLITE_WRITER !== 'inline') {
    const data = { file, synchronous }
    if (typeof __INTERDICT_SQLITE_THREAD__ === 'string')
      return new WorkerWriter(__INTERDICT_SQLITE_THREAD__, data, onError)
    const entry = new URL('./sqlite-ingest.worker.js', import.meta.url)
    if (entry.protocol === 'file:' && existsSync(fileURLToPath(entry))) return new WorkerWriter(entry, data, onError)
  }
  return new InlineWriter(new SqliteBatchWriter(file, synchronous, 1000))
}
