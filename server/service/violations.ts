// Derives the two alerting events from what devices send: `violation.new` (a finding for a (device, app) that was not
// open before) and `device.silent` (a device that crossed into `unknown`). Both are decided by a conditional write
// (INSERT .. ON CONFLICT DO NOTHING / UPDATE .. WHERE) whose winner alone emits, so with several instances on one
// PostgreSQL each event fires once. Reports are processed off the request path, in batches, after they were stored.
import type { ReportBody } from '../protocol.js'
import type { Db } from '../storage/db.js'
import { type BusEvent, type EventBus, findingFields, type ViolationData } from './events.js'
import type { QueryService } from './queries.js'
import { iso } from './util.js'

type Stored = { deviceId: string; class: string; body: ReportBody; status: readonly string[] }

const MAX_QUEUE = 100_000

export interface ViolationOptions {
  /** How often to look for devices that went silent. */
  silentCheckMs: number
  /** Devices silent for longer than this (beyond the unknown cutoff) when first noticed are not announced. */
  silentLookbackMs: number
}

type OpenApp = Omit<ViolationData, 'deviceId' | 'class' | 'hostname'>

/** Open (not remediated, not exempted) apps of a report, first finding of each, given its finding statuses. Pure. */
export function openApps(body: ReportBody, status: readonly string[]): Map<string, OpenApp> {
  const out = new Map<string, OpenApp>()
  body.findings.forEach((f, i) => {
    if (status[i] !== 'open' || out.has(f.appId)) return
    const actions = body.actions.filter((a) => a.finding === f.id).map((a) => ({ action: a.action, result: a.result }))
    out.set(f.appId, {
      ...findingFields(f),
      reportId: body.reportId,
      scannedAt: body.scannedAt,
      actions,
    })
  })
  return out
}

/** Watcher reports carry only what just started; every other report is a full scan that can close violations. */
export const isFullScan = (body: ReportBody) => body.inventory.source !== 'watcher'

export class ViolationTracker {
  private queue: Stored[] = []
  private running: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private silentTimer: NodeJS.Timeout | undefined
  /** Devices that may have open violations: clean reports from other devices cost no query. Refreshed periodically. */
  private mayBeOpen = new Set<string>()
  private refreshedAt = 0
  private stopped = false
  /** Reports not examined because the queue was full. */
  dropped = 0

  constructor(
    private readonly db: Db,
    private readonly events: EventBus,
    private readonly queries: QueryService,
    private readonly opts: ViolationOptions,
    private readonly log: { error: (o: object, m: string) => void },
  ) {}

  async start() {
    await this.refresh()
    this.events.on((e) => this.onEvent(e))
    this.silentTimer = setInterval(() => {
      this.checkSilent().catch((err) => this.log.error({ err }, 'silent device check failed'))
    }, this.opts.silentCheckMs)
    this.silentTimer.unref()
  }

  /** Stop taking events and finish the batch in hand (shutdown). */
  async stop() {
    this.stopped = true
    if (this.silentTimer) clearInterval(this.silentTimer)
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    while (this.running || this.queue.length > 0) {
      if (this.running) await this.running
      else await this.run()
    }
  }

  private onEvent(e: BusEvent) {
    if (e.type !== 'report' || e.duplicate || this.stopped) return
    // Bounded: if the database falls this far behind, alerts are lost rather than the server's memory.
    if (this.queue.length >= MAX_QUEUE) {
      this.dropped++
      return
    }
    // A report that does not assess (it was validated when stored) has no open apps.
    this.queue.push({ deviceId: e.deviceId, class: e.class, body: e.body, status: e.findingStatus ?? [] })
    if (!this.timer && !this.running) this.timer = setTimeout(() => this.run(), 5)
  }

  /** Process everything queued (tests call this to settle). */
  async settle() {
    while (this.running || this.queue.length > 0 || this.timer) {
      if (this.timer) {
        clearTimeout(this.timer)
        this.timer = undefined
      }
      if (this.running) await this.running
      else await this.run()
    }
  }

  private run(): Promise<void> {
    this.timer = undefined
    if (this.running) return this.running
    const batch = this.queue.splice(0, 500)
    this.running = this.process(batch)
      .catch((err) => this.log.error({ err }, 'violation tracking failed'))
      .finally(() => {
        this.running = undefined
        if (this.queue.length > 0 && !this.timer) this.timer = setTimeout(() => this.run(), 0)
      })
    return this.running
  }

  private async refresh() {
    const rows = await this.db.selectFrom('violations').select('device_id').where('closed_at', 'is', null).execute()
    this.mayBeOpen = new Set(rows.map((r) => r.device_id))
    this.refreshedAt = Date.now()
  }

  private async process(batch: Stored[]) {
    if (batch.length === 0) return
    if (Date.now() - this.refreshedAt > 60_000) await this.refresh()
    const work = batch
      .map((s) => ({
        ...s,
        open: openApps(s.body, s.status),
        scannedAt: Date.parse(s.body.scannedAt),
        full: isFullScan(s.body),
      }))
      .filter((w) => w.open.size > 0 || (w.full && this.mayBeOpen.has(w.deviceId)))
    if (work.length === 0) return
    const fresh: ViolationData[] = []
    await this.db.transaction().execute(async (trx) => {
      const now = Date.now()
      for (const w of work) {
        const apps = [...w.open.keys()]
        if (apps.length > 0) {
          const inserted = await trx
            .insertInto('violations')
            .values(
              apps.map((app_id) => ({
                device_id: w.deviceId,
                app_id,
                opened_at: now,
                last_seen: w.scannedAt,
                closed_at: null,
              })),
            )
            .onConflict((oc) => oc.columns(['device_id', 'app_id']).doNothing())
            .returning('app_id')
            .execute()
          const reopened = await trx
            .updateTable('violations')
            .set({ closed_at: null, opened_at: now, last_seen: w.scannedAt })
            .where('device_id', '=', w.deviceId)
            .where('app_id', 'in', apps)
            .where('closed_at', 'is not', null)
            .where('last_seen', '<=', w.scannedAt)
            .returning('app_id')
            .execute()
          await trx
            .updateTable('violations')
            .set({ last_seen: w.scannedAt })
            .where('device_id', '=', w.deviceId)
            .where('app_id', 'in', apps)
            .where('last_seen', '<', w.scannedAt)
            .execute()
          for (const r of [...inserted, ...reopened]) {
            const v = w.open.get(r.app_id)
            if (v) fresh.push({ ...v, deviceId: w.deviceId, class: w.class, hostname: null })
          }
          this.mayBeOpen.add(w.deviceId)
        }
        if (w.full) {
          let close = trx
            .updateTable('violations')
            .set({ closed_at: now })
            .where('device_id', '=', w.deviceId)
            .where('closed_at', 'is', null)
            .where('last_seen', '<=', w.scannedAt)
          if (apps.length > 0) close = close.where('app_id', 'not in', apps)
          await close.execute()
          if (apps.length === 0) this.mayBeOpen.delete(w.deviceId)
        }
      }
    })
    if (fresh.length === 0) return
    const ids = [...new Set(fresh.map((f) => f.deviceId))]
    const hosts = new Map(
      (await this.db.selectFrom('devices').select(['id', 'hostname']).where('id', 'in', ids).execute()).map((d) => [
        d.id,
        d.hostname,
      ]),
    )
    for (const v of fresh) this.events.emit({ type: 'violation.new', ...v, hostname: hosts.get(v.deviceId) ?? null })
  }

  /** Devices that crossed into `unknown` since they were last announced; each silence is announced once. */
  async checkSilent(now = Date.now()) {
    const cutoff = this.queries.cutoff(now)
    const silentAfterSec = Math.round((now - cutoff) / 1000)
    for (let round = 0; round < 20 && !this.stopped; round++) {
      const rows = await this.db
        .selectFrom('devices as d')
        .leftJoin('silent_alerts as s', 's.device_id', 'd.id')
        .select(['d.id', 'd.hostname', 'd.class', 'd.last_seen'])
        .where('d.status', '<>', 'revoked')
        .where('d.last_seen', '<', cutoff)
        .where('d.last_seen', '>=', cutoff - this.opts.silentLookbackMs)
        .where((eb) => eb.or([eb('s.last_seen', 'is', null), eb('s.last_seen', '<', eb.ref('d.last_seen'))]))
        .orderBy('d.last_seen')
        .limit(500)
        .execute()
      if (rows.length === 0) return
      for (const d of rows) {
        const won = await this.db
          .insertInto('silent_alerts')
          .values({ device_id: d.id, last_seen: d.last_seen, alerted_at: now })
          .onConflict((oc) =>
            oc
              .column('device_id')
              .doUpdateSet((eb) => ({
                last_seen: eb.ref('excluded.last_seen'),
                alerted_at: eb.ref('excluded.alerted_at'),
              }))
              .where('silent_alerts.last_seen', '<', d.last_seen),
          )
          .returning('device_id')
          .execute()
        if (won.length === 0) continue
        this.events.emit({
          type: 'device.silent',
          deviceId: d.id,
          hostname: d.hostname,
          class: d.class,
          lastSeen: iso(d.last_seen)!,
          silentAfterSec,
        })
      }
      if (rows.length < 500) return
    }
  }
}
