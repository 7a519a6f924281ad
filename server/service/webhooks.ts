// Webhooks: endpoints the security team registers for `violation.new` and `device.silent`. An event becomes one
// delivery row per subscribed endpoint (so a restart resumes what was pending); a dispatcher claims due rows with a
// guarded UPDATE (only one instance wins a row, so each delivery is sent once), POSTs them signed, and records every
// attempt. Failures are retried with exponential backoff and jitter. Nothing here runs on a request's path: events
// arrive through the in-process bus and are written and sent in the background.
import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import type { Db } from '../storage/db.js'
import type { DeliveryStatus, WebhooksTable } from '../storage/schema.js'
import type { Principal } from './auth.js'
import { writeAudit } from './audit.js'
import {
  type BusEvent,
  type EventBus,
  type SilentData,
  type ViolationData,
  WEBHOOK_EVENTS,
  type WebhookEvent,
} from './events.js'
import { badRequest, iso, newId, notFound, parseJson } from './util.js'

export type WebhookFormat = WebhooksTable['format']

export interface WebhookOptions {
  /** First retry after about this long; each further one waits twice as long (with ±20% jitter). */
  retryBaseMs: number
  retryMaxMs: number
  maxAttempts: number
  /** How often to look for due deliveries (retries, other instances' rows, rows left by a restart). */
  pollMs: number
  timeoutMs: number
  concurrency: number
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = {
  retryBaseMs: 10_000,
  retryMaxMs: 3_600_000,
  maxAttempts: 10,
  pollMs: 1000,
  timeoutMs: 10_000,
  concurrency: 8,
}

export interface CreateWebhookBody {
  url: string
  secret?: string
  events: WebhookEvent[]
  format?: WebhookFormat
  description?: string
}

/** Delay before attempt `n + 1` after `n` failed attempts. Pure apart from the jitter source. */
export function backoffMs(failed: number, o: Pick<WebhookOptions, 'retryBaseMs' | 'retryMaxMs'>, rnd = Math.random) {
  const base = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** Math.max(0, failed - 1))
  return Math.round(base * (0.8 + 0.4 * rnd()))
}

export const sign = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

/** The human line Slack and Teams show. Pure. */
export function eventText(event: WebhookEvent, data: ViolationData | SilentData): string {
  if (event === 'violation.new') {
    const v = data as ViolationData
    const acts = v.actions.length > 0 ? v.actions.map((a) => `${a.action}: ${a.result}`).join(', ') : 'none'
    return (
      `Interdict: ${v.appName ?? v.appId} (${v.appId}) found on ${v.hostname ?? v.deviceId} [class ${v.class}]` +
      ` by ${v.signal}${v.matched ? ` "${v.matched}"` : ''}. Actions: ${acts}. Device ${v.deviceId}, scanned ${v.scannedAt}.`
    )
  }
  const s = data as SilentData
  return (
    `Interdict: device ${s.hostname} [class ${s.class}] has gone silent: nothing heard since ${s.lastSeen}` +
    ` (unknown after ${s.silentAfterSec} s). Device ${s.deviceId}.`
  )
}

/** What is POSTed for one attempt. JSON carries the send time and delivery id inside the signed body (replay check). */
export function renderBody(
  format: WebhookFormat,
  d: { id: string; event: WebhookEvent; data: ViolationData | SilentData; attempt: number },
  now: Date,
) {
  if (format === 'slack' || format === 'teams') return JSON.stringify({ text: eventText(d.event, d.data) })
  return JSON.stringify({ id: d.id, event: d.event, timestamp: now.toISOString(), attempt: d.attempt, data: d.data })
}

function checkUrl(raw: string): string {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw badRequest(`url is not a valid URL: "${raw}"`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw badRequest('url must be http:// or https://')
  if (u.username || u.password) throw badRequest('url must not carry credentials; use the signing secret')
  return u.toString()
}

const view = (w: WebhooksTable) => ({
  id: w.id,
  url: w.url,
  events: parseJson<WebhookEvent[]>(w.events, []),
  format: w.format,
  description: w.description,
  createdAt: iso(w.created_at),
  createdBy: w.created_by,
})

export class WebhookService {
  readonly instance = randomUUID().slice(0, 8)
  private pollTimer: NodeJS.Timeout | undefined
  private kickTimer: NodeJS.Timeout | undefined
  private ticking: Promise<void> | undefined
  private inflight = new Set<Promise<void>>()
  private pendingEvents: { event: WebhookEvent; data: ViolationData | SilentData }[] = []
  private persisting: Promise<void> | undefined
  private stopped = false
  /** Delivery outcomes, for /metrics. */
  onResult: (event: string, result: 'delivered' | 'retry' | 'failed') => void = () => {}

  constructor(
    private readonly db: Db,
    private readonly opts: WebhookOptions,
    private readonly log: { warn: (o: object, m: string) => void; error: (o: object, m: string) => void },
  ) {}

  start(events: EventBus) {
    events.on((e) => this.onEvent(e))
    this.pollTimer = setInterval(() => this.kick(), this.opts.pollMs)
    this.pollTimer.unref()
    this.kick()
  }

  async stop() {
    this.stopped = true
    if (this.pollTimer) clearInterval(this.pollTimer)
    if (this.kickTimer) clearTimeout(this.kickTimer)
    await this.persisting
    await this.ticking
    await Promise.allSettled([...this.inflight])
  }

  // ---- endpoints ----

  async create(actor: Principal, body: CreateWebhookBody) {
    const url = checkUrl(body.url)
    const events = [...new Set(body.events)].sort()
    if (events.length === 0) throw badRequest(`events must name at least one of ${WEBHOOK_EVENTS.join(', ')}`)
    const secret = body.secret ?? `whsec_${randomBytes(24).toString('base64url')}`
    const row: WebhooksTable = {
      id: newId('whk'),
      url,
      secret,
      events: JSON.stringify(events),
      format: body.format ?? 'json',
      description: body.description ?? null,
      created_at: Date.now(),
      created_by: actor.tokenId,
      deleted_at: null,
    }
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('webhooks').values(row).execute()
      // The secret never goes into the audit log.
      await writeAudit(trx, actor, 'webhook.create', `webhook:${row.id}`, { url, events, format: row.format })
    })
    return { ...view(row), secret }
  }

  async list() {
    const rows = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('deleted_at', 'is', null)
      .orderBy('created_at')
      .execute()
    return rows.map(view)
  }

  async remove(actor: Principal, id: string) {
    await this.db.transaction().execute(async (trx) => {
      const now = Date.now()
      const r = await trx
        .updateTable('webhooks')
        .set({ deleted_at: now })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst()
      if (r.numUpdatedRows === 0n) throw notFound(`no webhook "${id}"`)
      await trx
        .updateTable('webhook_deliveries')
        .set({ status: 'cancelled', finished_at: now, last_error: 'webhook deleted' })
        .where('webhook_id', '=', id)
        .where('status', '=', 'pending')
        .execute()
      await writeAudit(trx, actor, 'webhook.delete', `webhook:${id}`)
    })
    return { id, deleted: true }
  }

  /** The delivery log of one endpoint, newest first, each delivery with every attempt. */
  async deliveries(id: string, q: { status?: DeliveryStatus; limit?: number }) {
    const hook = await this.db.selectFrom('webhooks').select('id').where('id', '=', id).executeTakeFirst()
    if (!hook) throw notFound(`no webhook "${id}"`)
    let query = this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('webhook_id', '=', id)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(q.limit ?? 100)
    if (q.status) query = query.where('status', '=', q.status)
    const rows = await query.execute()
    const attempts =
      rows.length === 0
        ? []
        : await this.db
            .selectFrom('webhook_attempts')
            .selectAll()
            .where(
              'delivery_id',
              'in',
              rows.map((r) => r.id),
            )
            .orderBy('seq')
            .execute()
    const by = new Map<string, typeof attempts>()
    for (const a of attempts) {
      const list = by.get(a.delivery_id)
      if (list) list.push(a)
      else by.set(a.delivery_id, [a])
    }
    return rows.map((r) => ({
      id: r.id,
      event: r.event,
      status: r.status,
      attempts: r.attempts,
      createdAt: iso(r.created_at),
      nextAttemptAt: r.status === 'pending' ? iso(r.next_attempt_at) : null,
      finishedAt: iso(r.finished_at),
      lastError: r.last_error,
      payload: parseJson<unknown>(r.payload, null),
      log: (by.get(r.id) ?? []).map((a) => ({
        attempt: a.attempt,
        at: iso(a.at),
        statusCode: a.status_code,
        error: a.error,
        durationMs: a.duration_ms,
        instance: a.instance,
      })),
    }))
  }

  // ---- events -> delivery rows ----

  private onEvent(e: BusEvent) {
    if (this.stopped || (e.type !== 'violation.new' && e.type !== 'device.silent')) return
    const { type, ...data } = e
    this.pendingEvents.push({ event: type, data })
    this.persisting ??= this.persist().finally(() => {
      this.persisting = undefined
    })
  }

  private async persist() {
    while (this.pendingEvents.length > 0) {
      const batch = this.pendingEvents.splice(0, 500)
      try {
        const hooks = (
          await this.db.selectFrom('webhooks').select(['id', 'events']).where('deleted_at', 'is', null).execute()
        ).map((h) => ({ id: h.id, events: parseJson<string[]>(h.events, []) }))
        const now = Date.now()
        const rows = batch.flatMap(({ event, data }) =>
          hooks
            .filter((h) => h.events.includes(event))
            .map((h) => ({
              id: newId('dlv'),
              webhook_id: h.id,
              event,
              payload: JSON.stringify(data),
              status: 'pending' as const,
              attempts: 0,
              next_attempt_at: now,
              claimed_by: null,
              claimed_until: null,
              created_at: now,
              finished_at: null,
              last_error: null,
            })),
        )
        for (let i = 0; i < rows.length; i += 200)
          await this.db
            .insertInto('webhook_deliveries')
            .values(rows.slice(i, i + 200))
            .execute()
        if (rows.length > 0) this.kick()
      } catch (err) {
        this.log.error({ err, events: batch.length }, 'could not queue webhook deliveries')
      }
    }
  }

  // ---- dispatcher ----

  /** Look for due deliveries soon (coalesced). */
  kick() {
    if (this.stopped || this.kickTimer) return
    this.kickTimer = setTimeout(() => {
      this.kickTimer = undefined
      if (this.ticking) return
      this.ticking = this.tick()
        .catch((err) => this.log.error({ err }, 'webhook dispatch failed'))
        .finally(() => {
          this.ticking = undefined
        })
    }, 0)
  }

  /** Wait until nothing is queued, being sent or due (tests). */
  async settle() {
    for (;;) {
      await this.persisting
      await this.ticking
      await Promise.allSettled([...this.inflight])
      const due = await this.db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', Date.now())
        .limit(1)
        .execute()
      if (due.length === 0 && this.inflight.size === 0 && !this.persisting && this.pendingEvents.length === 0) return
      await this.tick()
    }
  }

  private async tick() {
    const now = Date.now()
    // A sender that died mid-delivery leaves its rows `sending`: past the claim they are due again (at least once).
    await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', claimed_by: null, claimed_until: null })
      .where('status', '=', 'sending')
      .where('claimed_until', '<', now)
      .execute()
    const free = this.opts.concurrency - this.inflight.size
    if (free <= 0 || this.stopped) return
    const due = await this.db
      .selectFrom('webhook_deliveries')
      .select(['id'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .limit(free)
      .execute()
    for (const { id } of due) {
      // The claim: only one instance's UPDATE finds the row still pending.
      const claimed = await this.db
        .updateTable('webhook_deliveries')
        .set((eb) => ({
          status: 'sending',
          claimed_by: this.instance,
          claimed_until: now + this.opts.timeoutMs * 3,
          attempts: eb('attempts', '+', 1),
        }))
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst()
      if (claimed.numUpdatedRows !== 1n) continue
      const p = this.send(id)
        .catch((err) => this.log.error({ err, delivery: id }, 'webhook delivery failed'))
        .finally(() => {
          this.inflight.delete(p)
          if (!this.stopped) this.kick()
        })
      this.inflight.add(p)
    }
  }

  private async send(id: string) {
    const d = await this.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .select([
        'd.id',
        'd.event',
        'd.payload',
        'd.attempts',
        'd.webhook_id',
        'w.url',
        'w.secret',
        'w.format',
        'w.deleted_at',
      ])
      .where('d.id', '=', id)
      .executeTakeFirstOrThrow()
    const finish = (status: DeliveryStatus, error: string | null, next?: number) =>
      this.db
        .updateTable('webhook_deliveries')
        .set({
          status,
          last_error: error,
          claimed_by: null,
          claimed_until: null,
          ...(next === undefined ? { finished_at: Date.now() } : { next_attempt_at: next }),
        })
        .where('id', '=', id)
        .where('claimed_by', '=', this.instance)
        .execute()
    if (d.deleted_at !== null) {
      await finish('cancelled', 'webhook deleted')
      return
    }
    const event = d.event as WebhookEvent
    const started = Date.now()
    const body = renderBody(
      d.format,
      { id: d.id, event, data: parseJson(d.payload, {} as ViolationData), attempt: d.attempts },
      new Date(started),
    )
    let statusCode: number | null = null
    let error: string | null = null
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'interdict-webhook/1',
          'x-interdict-event': event,
          'x-interdict-delivery': d.id,
          'x-interdict-timestamp': String(Math.floor(started / 1000)),
          'x-interdict-signature': sign(d.secret, body),
        },
        body,
        // A redirect could point the signed payload anywhere: it counts as a failure instead.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      })
      statusCode = res.status
      await res.body?.cancel().catch(() => {})
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } }
      error = e.name === 'TimeoutError' ? `timed out after ${this.opts.timeoutMs} ms` : (e.cause?.code ?? e.message)
    }
    const at = Date.now()
    await this.db
      .insertInto('webhook_attempts')
      .values({
        delivery_id: d.id,
        webhook_id: d.webhook_id,
        attempt: d.attempts,
        at,
        status_code: statusCode,
        error,
        duration_ms: at - started,
        instance: this.instance,
      })
      .execute()
    if (error === null) {
      await finish('delivered', null)
      this.onResult(event, 'delivered')
      return
    }
    // Client errors other than timeouts and rate limits will not get better by retrying.
    const permanent =
      statusCode !== null && statusCode >= 400 && statusCode < 500 && ![408, 425, 429].includes(statusCode)
    if (permanent || d.attempts >= this.opts.maxAttempts) {
      await finish('failed', error)
      this.onResult(event, 'failed')
      this.log.warn({ webhook: d.webhook_id, delivery: d.id, attempts: d.attempts, error }, 'webhook delivery gave up')
      return
    }
    await finish('pending', error, at + backoffMs(d.attempts, this.opts))
    this.onResult(event, 'retry')
  }
}
