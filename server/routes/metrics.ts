// GET /metrics (Prometheus text format). Needs an admin or auditor token, like the rest of the read API; with
// --metrics-public it is also open without a token to clients on a loopback address (a local Prometheus or agent).
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { ServerContext } from '../app.js'
import { ApiError } from '../service/util.js'

const loopback = (addr: string | undefined) =>
  !!addr && (addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.'))

export const metricsRoutes: FastifyPluginAsync<{ ctx: ServerContext; publicOnLoopback: boolean }> = async (
  app,
  { ctx, publicOnLoopback },
) => {
  const metrics = ctx.integrations!.metrics
  const allowed = async (req: FastifyRequest) => {
    if (publicOnLoopback && loopback(req.socket.remoteAddress)) return
    const p = await ctx.auth.authenticate(req.headers.authorization)
    if (!p) throw new ApiError(401, 'unauthorized', 'missing, unknown or revoked token (Authorization: Bearer ...)')
    if (p.role === 'device') throw new ApiError(403, 'forbidden', 'metrics need an admin or auditor token')
  }
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics (text exposition format 0.0.4)' } as object },
    async (req, reply) => {
      await allowed(req)
      const text = await metrics.metrics()
      return reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(text)
    },
  )
}
