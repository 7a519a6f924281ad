// Device protocol (DESIGN §4): enroll, policy (ETag + long-poll), reports, heartbeat. Handlers stay thin.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import type { ServerContext } from '../app.js'
import { EnrollBody, HeartbeatBody, PolicyQuery, ReportBody } from '../protocol.js'
import type { BundleEntry } from '../service/policy.js'
import { ApiError } from '../service/util.js'
import { requireDevice } from './auth.js'

function sendBundle(reply: FastifyReply, e: BundleEntry) {
  return reply.header('etag', e.etag).header('cache-control', 'no-cache').type('application/json').send(e.body)
}

/** If-None-Match may list several tags and weak ones (W/"..."); `*` matches any current bundle. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false
  if (header === etag) return true // what agents send: no need to take the header apart
  for (const raw of header.split(',')) {
    const t = raw.trim().replace(/^W\//, '')
    if (t === etag || t === '*') return true
  }
  return false
}

/** Polls that do not wait: the only ones the onRequest shortcut answers. */
const QUICK_POLL = new Set(['/api/v1/policy', '/api/v1/policy?wait=0'])

export const deviceRoutes: FastifyPluginAsyncTypebox<{ ctx: ServerContext }> = async (app, { ctx }) => {
  app.get('/healthz', async () => ({ ok: true }))

  app.post('/api/v1/enroll', { bodyLimit: 16 * 1024, schema: { body: EnrollBody } }, async (req) => {
    return ctx.events.enrolled(await ctx.enrollment.enroll(req.body), req.body)
  })

  app.get(
    '/api/v1/policy',
    {
      schema: { querystring: PolicyQuery },
      // Unchanged-policy polls are most of the traffic: with the token in the auth cache and If-None-Match naming the
      // current bundle, the 304 goes out here, before query validation and the async handler. Anything else (first
      // sight of a token, long-poll wait, other tag) takes the full route below.
      onRequest: (req, reply, done) => {
        const inm = req.headers['if-none-match']
        if (inm === undefined || !QUICK_POLL.has(req.url)) return done()
        const p = ctx.auth.cached(req.headers.authorization)
        const e = p?.role === 'device' && p.class ? ctx.policy.get(p.class) : undefined
        if (!e || !etagMatches(inm, e.etag)) return done()
        reply.code(304).header('etag', e.etag).send()
      },
    },
    async (req, reply) => {
      const dev = await requireDevice(ctx, req)
      const entry = ctx.policy.get(dev.class)
      if (!entry) throw new ApiError(404, 'no_policy', `no bundle has been issued for class "${dev.class}" yet`)
      if (!etagMatches(req.headers['if-none-match'], entry.etag)) return sendBundle(reply, entry)
      const wait = req.query.wait ?? 0
      if (wait > 0) {
        const next = await ctx.policy.wait(dev.class, entry.etag, wait * 1000, reply.raw)
        if (next) return sendBundle(reply, next)
      }
      return reply.code(304).header('etag', entry.etag).send()
    },
  )

  app.post('/api/v1/reports', { schema: { body: ReportBody } }, async (req, reply) => {
    const dev = await requireDevice(ctx, req)
    const r = await ctx.ingestor.submitReport(dev.deviceId, dev.class, req.body)
    ctx.events.reported(dev.deviceId, dev.class, req.body, r.duplicate, r.findingStatus)
    return reply.code(202).send({ reportId: req.body.reportId, accepted: true, duplicate: r.duplicate })
  })

  app.post('/api/v1/heartbeat', { bodyLimit: 64 * 1024, schema: { body: HeartbeatBody } }, async (req) => {
    const dev = await requireDevice(ctx, req)
    await ctx.ingestor.submitHeartbeat(dev.deviceId, req.body)
    return {
      ok: true,
      policyVersion: ctx.policy.get(dev.class)?.version ?? null,
      heartbeatIntervalSec: ctx.heartbeatIntervalSec,
    }
  })
}
