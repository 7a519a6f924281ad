// Exemptions granted through the API (next to those written in policy files): one app, for one device or a whole
// class, with a reason, an approver and an expiry. Granting or revoking re-issues the affected class bundle (signed, new
// version) in the same transaction, so agents get it on their next poll; the bundle carries the exemption in the
// policy language's own form, which the agent matcher applies only until it expires. Lapsed exemptions leave the
// bundles at the next re-issue, which a timer schedules for the moment the soonest one expires.
import type { Exemption } from '../../policies/schema.js'
import type { Db } from '../storage/db.js'
import type { ExemptionsTable } from '../storage/schema.js'
import type { Principal } from './auth.js'
import { writeAudit } from './audit.js'
import type { BundleRef, EventBus, ExemptionView } from './events.js'
import { type BundleEntry, type PolicyService, retrying } from './policy.js'
import { badRequest, conflict, iso, newId, notFound, parseTime } from './util.js'

/** The bundle form of the live API exemptions for one class (PolicyOptions.exemptions). Ordered: it is hashed. */
export async function activeExemptions(db: Db, cls: string, now: Date): Promise<Exemption[]> {
  const rows = await db
    .selectFrom('exemptions as e')
    .leftJoin('devices as d', 'd.id', 'e.device')
    .select(['e.id', 'e.app', 'e.device', 'e.class', 'e.reason', 'e.approved_by', 'e.expires_at'])
    .where('e.revoked_at', 'is', null)
    .where('e.expires_at', '>', now.getTime())
    .where((eb) => eb.or([eb('e.class', '=', cls), eb.and([eb('e.device', 'is not', null), eb('d.class', '=', cls)])]))
    .orderBy('e.created_at')
    .orderBy('e.id')
    .execute()
  return rows.map((r) => ({
    ...(r.device ? { device: r.device } : { class: cls }),
    apps: [r.app],
    reason: r.reason,
    approvedBy: r.approved_by,
    expiresAt: new Date(r.expires_at).toISOString(),
  }))
}

const refs = (issued: BundleEntry[]): BundleRef[] => issued.map((e) => ({ class: e.class, version: e.version }))

export function exemptionView(r: ExemptionsTable, now = Date.now()): ExemptionView {
  return {
    id: r.id,
    app: r.app,
    device: r.device,
    class: r.class,
    reason: r.reason,
    approvedBy: r.approved_by,
    createdAt: iso(r.created_at),
    createdBy: r.created_by,
    expiresAt: iso(r.expires_at),
    revokedAt: iso(r.revoked_at),
    revokedBy: r.revoked_by,
    status: r.revoked_at !== null ? 'revoked' : r.expires_at <= now ? 'expired' : 'active',
  }
}

export interface GrantBody {
  app: string
  device?: string
  class?: string
  reason: string
  expiresAt?: string
  expiresIn?: string
  approver?: string
}

export interface ExemptionQuery {
  status?: 'active' | 'expired' | 'revoked'
  app?: string
  device?: string
  class?: string
  limit?: number
}

const DURATION = /^(\d{1,6})([mhdw])$/
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
/** Timers cannot wait longer than ~24.8 days; maintenance picks up anything later. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** `expiresAt` (ISO) or `expiresIn` (30m, 12h, 7d, 2w from now) -> epoch ms in the future. Pure. */
export function expiryOf(body: Pick<GrantBody, 'expiresAt' | 'expiresIn'>, now: number): number {
  if ((body.expiresAt === undefined) === (body.expiresIn === undefined))
    throw badRequest('give exactly one of expiresAt (ISO date-time) and expiresIn (30m, 12h, 7d, 2w)')
  let at: number
  if (body.expiresIn !== undefined) {
    const m = DURATION.exec(body.expiresIn.trim())
    if (!m) throw badRequest(`expiresIn must look like 30m, 12h, 7d or 2w (got "${body.expiresIn}")`)
    at = now + Number(m[1]) * UNIT_MS[m[2]!]!
  } else at = parseTime(body.expiresAt!, now, 'expiresAt')
  if (at <= now) throw badRequest('the expiry must be in the future')
  return at
}

export class ExemptionService {
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(
    private readonly db: Db,
    private readonly policy: PolicyService,
    private readonly events: EventBus,
    private readonly log: { error: (o: object, m: string) => void },
  ) {}

  async start() {
    await this.schedule()
  }

  stop() {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }

  /** Wake at the soonest expiry and re-issue, so a lapsed exemption leaves the bundle at once, not at maintenance. */
  private async schedule() {
    if (this.stopped) return
    if (this.timer) clearTimeout(this.timer)
    const now = Date.now()
    const next = await this.db
      .selectFrom('exemptions')
      .select((eb) => eb.fn.min('expires_at').as('at'))
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst()
    const at = next?.at == null ? undefined : Number(next.at)
    if (at === undefined || this.stopped) return
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.policy
          .maintain()
          .then(() => this.schedule())
          .catch((err) => this.log.error({ err }, 'exemption expiry re-issue failed'))
      },
      Math.min(MAX_TIMER_MS, at - now + 50),
    )
    this.timer.unref()
  }

  private async approverOf(actor: Principal): Promise<string> {
    const row = await this.db.selectFrom('tokens').select('label').where('id', '=', actor.tokenId).executeTakeFirst()
    return row?.label ? `${row.label} (${actor.tokenId})` : actor.tokenId
  }

  async grant(actor: Principal, body: GrantBody) {
    if ((body.device === undefined) === (body.class === undefined))
      throw badRequest('give exactly one of device (a device id) and class')
    const now = Date.now()
    const expiresAt = expiryOf(body, now)
    const approvedBy = body.approver ?? (await this.approverOf(actor))
    const id = newId('exm')
    const { row, issued } = await retrying(() =>
      this.db.transaction().execute(async (trx) => {
        const set = await this.policy.currentSet(trx)
        if (!set.policies.some((p) => p.apps.some((a) => a.id === body.app)))
          throw notFound(`no app "${body.app}" in the policies in force (see: interdictctl policy list)`)
        let cls: string
        if (body.device !== undefined) {
          const d = await trx
            .selectFrom('devices')
            .select(['class', 'status'])
            .where('id', '=', body.device)
            .executeTakeFirst()
          if (!d) throw notFound(`no device "${body.device}"`)
          if (d.status === 'revoked') throw conflict(`device "${body.device}" is revoked`)
          cls = d.class
        } else {
          const c = await trx.selectFrom('classes').select('name').where('name', '=', body.class!).executeTakeFirst()
          if (!c) throw notFound(`no class "${body.class}"`)
          cls = c.name
        }
        const row: ExemptionsTable = {
          id,
          app: body.app,
          device: body.device ?? null,
          class: body.device === undefined ? cls : null,
          reason: body.reason,
          approved_by: approvedBy,
          created_at: now,
          created_by: actor.tokenId,
          expires_at: expiresAt,
          revoked_at: null,
          revoked_by: null,
        }
        await trx.insertInto('exemptions').values(row).execute()
        const issued = await this.policy.issueForClasses(trx, [cls], 'exemption')
        await writeAudit(trx, actor, 'exemption.grant', `exemption:${id}`, {
          app: row.app,
          device: row.device,
          class: row.class,
          reason: row.reason,
          approvedBy,
          expiresAt: iso(expiresAt),
          bundles: refs(issued),
        })
        return { row, issued }
      }),
    )
    return this.after(actor, 'exemption.grant', row, issued)
  }

  async revoke(actor: Principal, id: string) {
    const { row, issued } = await retrying(() =>
      this.db.transaction().execute(async (trx) => {
        const now = Date.now()
        const row = await trx
          .updateTable('exemptions')
          .set({ revoked_at: now, revoked_by: actor.tokenId })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .returningAll()
          .executeTakeFirst()
        if (!row) {
          const exists = await trx.selectFrom('exemptions').select('id').where('id', '=', id).executeTakeFirst()
          if (!exists) throw notFound(`no exemption "${id}"`)
          throw conflict(`exemption "${id}" is already revoked`)
        }
        const cls =
          row.class ??
          (await trx.selectFrom('devices').select('class').where('id', '=', row.device!).executeTakeFirst())?.class
        const issued = cls ? await this.policy.issueForClasses(trx, [cls], 'exemption') : []
        await writeAudit(trx, actor, 'exemption.revoke', `exemption:${id}`, {
          app: row.app,
          device: row.device,
          class: row.class,
          bundles: refs(issued),
        })
        return { row, issued }
      }),
    )
    return this.after(actor, 'exemption.revoke', row, issued)
  }

  private async after(
    actor: Principal,
    type: 'exemption.grant' | 'exemption.revoke',
    row: ExemptionsTable,
    issued: BundleEntry[],
  ) {
    await this.policy.announce(issued)
    const bundles = refs(issued)
    const exemption = exemptionView(row)
    this.events.emit({ type, actor: actor.tokenId, exemption, bundles })
    this.schedule().catch((err) => this.log.error({ err }, 'exemption timer'))
    return { ...exemption, bundles }
  }

  async list(q: ExemptionQuery) {
    const now = Date.now()
    let query = this.db
      .selectFrom('exemptions')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(q.limit ?? 1000)
    if (q.status === 'active') query = query.where('revoked_at', 'is', null).where('expires_at', '>', now)
    else if (q.status === 'expired') query = query.where('revoked_at', 'is', null).where('expires_at', '<=', now)
    else if (q.status === 'revoked') query = query.where('revoked_at', 'is not', null)
    if (q.app) query = query.where('app', '=', q.app)
    if (q.device) query = query.where('device', '=', q.device)
    if (q.class) query = query.where('class', '=', q.class)
    return (await query.execute()).map((r) => exemptionView(r, now))
  }

  async get(id: string) {
    const r = await this.db.selectFrom('exemptions').selectAll().where('id', '=', id).executeTakeFirst()
    if (!r) throw notFound(`no exemption "${id}"`)
    return exemptionView(r)
  }
}
