// The few reads the dashboard needs beyond the QueryService: compliance history, most-found apps, silent devices,
// filter choices. Each is one indexed query; the periodic snapshot is skipped when the hour already has one.
import type { ServerContext } from '../app.js'
import type { Db } from '../storage/db.js'
import { iso } from '../service/util.js'

const HOUR = 3_600_000

/** Writes one row per class for the current hour unless one exists; the (class, hour) key settles races. */
export async function takeSnapshot(ctx: ServerContext, now = Date.now()): Promise<boolean> {
  const db = ctx.storage.db
  const hour = Math.floor(now / HOUR) * HOUR
  const have = await db.selectFrom('compliance_snapshots').select('class').where('hour', '=', hour).limit(1).execute()
  if (have.length > 0) return false
  const summary = await ctx.queries.compliance()
  if (summary.classes.length === 0) return false
  await db
    .insertInto('compliance_snapshots')
    .values(summary.classes.map(({ class: cls, ...c }) => ({ class: cls, hour, taken_at: now, ...c })))
    .onConflict((oc) => oc.columns(['class', 'hour']).doNothing())
    .execute()
  return true
}

export class SnapshotTimer {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly ctx: ServerContext,
    private readonly everyMs: number,
    private readonly log: { warn: (o: object, m: string) => void },
  ) {}

  start() {
    const tick = () => {
      this.running = takeSnapshot(this.ctx).catch((err) => this.log.warn({ err }, 'compliance snapshot failed'))
    }
    tick()
    this.timer = setInterval(tick, this.everyMs)
    this.timer.unref()
  }

  async stop() {
    if (this.timer) clearInterval(this.timer)
    await this.running
  }
}

export async function snapshotHistory(db: Db, since: number) {
  const rows = await db
    .selectFrom('compliance_snapshots')
    .selectAll()
    .where('hour', '>=', since)
    .orderBy('hour')
    .orderBy('class')
    .execute()
  return rows.map((r) => ({
    class: r.class,
    hour: Number(r.hour),
    total: Number(r.total),
    compliant: Number(r.compliant),
    remediated: Number(r.remediated),
  }))
}

export async function topApps(db: Db, since: number, limit = 8) {
  const rows = await db
    .selectFrom('findings')
    .select(['app_id'])
    .select((eb) => [
      eb.fn.max('app_name').as('name'),
      eb.fn.countAll<number>().as('findings'),
      eb.fn.count<number>('device_id').distinct().as('devices'),
      eb.fn.max('scanned_at').as('last'),
    ])
    .where('scanned_at', '>=', since)
    .groupBy('app_id')
    .orderBy('devices', 'desc')
    .orderBy('findings', 'desc')
    .limit(limit)
    .execute()
  return rows.map((r) => ({
    app: r.app_id,
    name: r.name,
    findings: Number(r.findings),
    devices: Number(r.devices),
    lastSeen: iso(r.last === null ? null : Number(r.last)),
  }))
}

/** Devices not heard from since the `unknown` cutoff, most recently lost first, and how many there are. */
export async function silentDevices(db: Db, cutoff: number, limit = 10) {
  const base = db.selectFrom('devices').where('status', '<>', 'revoked').where('last_seen', '<', cutoff)
  const [rows, count] = await Promise.all([
    base.select(['id', 'hostname', 'class', 'os', 'last_seen']).orderBy('last_seen', 'desc').limit(limit).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ])
  return {
    total: Number(count.n),
    devices: rows.map((r) => ({ ...r, lastSeen: iso(Number(r.last_seen)) })),
  }
}

export async function distinctOs(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('devices').select('os').distinct().orderBy('os').limit(200).execute()
  return rows.map((r) => r.os)
}

/** Devices with any finding of the app (the findings_app index answers it). */
export async function devicesWithApp(db: Db, app: string): Promise<Set<string>> {
  const rows = await db.selectFrom('findings').select('device_id').distinct().where('app_id', '=', app).execute()
  return new Set(rows.map((r) => r.device_id))
}

/** Class names and the app ids of the policies in force, for the filter and grant forms: one policy.list() call. */
export async function filterChoices(ctx: ServerContext): Promise<{ classes: string[]; apps: string[] }> {
  const list = await ctx.policy.list()
  return { classes: list.classes.map((c) => c.class), apps: [...new Set(list.policies.flatMap((p) => p.apps))].sort() }
}

/** Stored bundles (newest first) with their payloads and who pushed their policy set, plus each one's predecessor so
 * every entry can be diffed. */
export async function bundleHistory(db: Db, limit: number) {
  const recent = await db
    .selectFrom('bundles as b')
    .leftJoin('policy_sets as p', 'p.version', 'b.policy_set')
    .select(['b.class', 'b.version', 'b.issued_at', 'b.policy_set', 'b.reason', 'b.signed', 'p.actor'])
    .orderBy('b.issued_at', 'desc')
    .orderBy('b.version', 'desc')
    .limit(limit)
    .execute()
  const need = recent.filter(
    (r) => r.version > 1 && !recent.some((o) => o.class === r.class && o.version === r.version - 1),
  )
  const prev = need.length
    ? await db
        .selectFrom('bundles')
        .select(['class', 'version', 'signed'])
        .where((eb) => eb.or(need.map((r) => eb.and([eb('class', '=', r.class), eb('version', '=', r.version - 1)]))))
        .execute()
    : []
  return { recent, previous: prev }
}
