// The security team's integrations, wired into one app: exemptions, webhooks, the SIEM event stream, Prometheus
// metrics and the OpenAPI document. Called by buildApp before any other route is registered (the OpenAPI collector
// and the request-latency hook must see every route).
import type { FastifyInstance } from 'fastify'
import type { ServerContext, ServerOptions } from './app.js'
import { collectRoutes } from './routes/docs.js'
import { exemptionRoutes } from './routes/exemptions.js'
import { metricsRoutes } from './routes/metrics.js'
import { webhookRoutes } from './routes/webhooks.js'
import { EventFile } from './service/events.js'
import { ExemptionService } from './service/exemptions.js'
import { Metrics } from './service/metrics.js'
import { ViolationTracker } from './service/violations.js'
import { DEFAULT_WEBHOOK_OPTIONS, WebhookService } from './service/webhooks.js'

export interface IntegrationOptions {
  /** JSON-lines event stream: a file path (appended) or `-` for stdout. */
  eventsFile?: string
  /** Serve /metrics without a token to loopback clients. */
  metricsPublic?: boolean
  webhooks?: Partial<typeof DEFAULT_WEBHOOK_OPTIONS>
  /** How often to look for devices gone silent (default: the heartbeat interval, at most 60 s). */
  silentCheckSec?: number
}

export interface Integrations {
  exemptions: ExemptionService
  webhooks: WebhookService
  violations: ViolationTracker
  metrics: Metrics
  eventFile?: EventFile
}

const VERSION = '0.1.0'

export async function setupIntegrations(
  app: FastifyInstance,
  ctx: ServerContext,
  opts: ServerOptions,
): Promise<Integrations> {
  const o: IntegrationOptions = opts.integrations ?? {}
  const { db } = ctx.storage
  const eventFile = o.eventsFile ? new EventFile(o.eventsFile, app.log) : undefined
  const metrics = new Metrics(
    db,
    ctx.queries,
    () => ctx.policy.waiterCount(),
    () => eventFile?.dropped ?? 0,
  )
  const webhooks = new WebhookService(db, { ...DEFAULT_WEBHOOK_OPTIONS, ...o.webhooks }, app.log)
  webhooks.onResult = (event, result) => metrics.webhookDeliveries.inc({ event, result })
  const silentCheckMs = (o.silentCheckSec ?? Math.min(60, ctx.heartbeatIntervalSec)) * 1000
  const violations = new ViolationTracker(
    db,
    ctx.events,
    ctx.queries,
    { silentCheckMs, silentLookbackMs: 24 * 3_600_000 },
    app.log,
  )
  const exemptions = new ExemptionService(db, ctx.policy, ctx.events, app.log)
  const integrations: Integrations = { exemptions, webhooks, violations, metrics, eventFile }
  ctx.integrations = integrations

  if (eventFile) ctx.events.on((e) => eventFile.handle(e))
  ctx.events.on((e) => metrics.onEvent(e))
  webhooks.start(ctx.events)
  await violations.start()
  await exemptions.start()

  collectRoutes(app, VERSION)
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.observeRequest(route, req.method, reply.statusCode, reply.elapsedTime)
    // A long-poll answered with a bundle issued after it started waiting: that is push latency.
    if (route === '/api/v1/policy' && reply.statusCode === 200 && (req.query as { wait?: number }).wait) {
      const etag = String(reply.getHeader('etag') ?? '')
      const cls = /^"(.+)\.\d+"$/.exec(etag)?.[1]
      const entry = cls ? ctx.policy.get(cls) : undefined
      const now = Date.now()
      if (entry && entry.etag === etag && entry.issuedAt >= now - reply.elapsedTime - 5)
        metrics.observePush(Math.max(0, now - entry.issuedAt) / 1000)
    }
  })
  await app.register(exemptionRoutes, { ctx, prefix: '/api/v1/admin' })
  await app.register(webhookRoutes, { ctx, prefix: '/api/v1/admin' })
  await app.register(metricsRoutes, { ctx, publicOnLoopback: o.metricsPublic === true })

  app.addHook('preClose', async () => {
    exemptions.stop()
    await violations.stop()
    await webhooks.stop()
  })
  app.addHook('onClose', async () => {
    await eventFile?.close()
  })
  return integrations
}
