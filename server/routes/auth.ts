// Route guards: who may call what. Device tokens only reach device routes, admin/auditor tokens only admin routes.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal } from '../service/auth.js'
import type { ServerContext } from '../app.js'
import { ApiError } from '../service/util.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

export async function requireDevice(
  ctx: ServerContext,
  req: FastifyRequest,
): Promise<Principal & { deviceId: string; class: string }> {
  const p = await ctx.auth.authenticate(req.headers.authorization)
  if (!p)
    throw new ApiError(401, 'unauthorized', 'missing, unknown or revoked device token (Authorization: Bearer ...)')
  if (p.role !== 'device' || !p.deviceId || !p.class)
    throw new ApiError(403, 'forbidden', 'this route needs a device token')
  return p as Principal & { deviceId: string; class: string }
}

/** preHandler for admin routes: auditors may read (GET), only admins may change anything. */
export function adminGuard(ctx: ServerContext) {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    const p = await ctx.auth.authenticate(req.headers.authorization)
    if (!p) throw new ApiError(401, 'unauthorized', 'missing, unknown or revoked token (Authorization: Bearer ...)')
    if (p.role === 'device') throw new ApiError(403, 'forbidden', 'device tokens cannot use the admin API')
    if (p.role === 'auditor' && req.method !== 'GET' && req.method !== 'HEAD') {
      throw new ApiError(403, 'forbidden', 'auditor tokens are read-only; this needs an admin token')
    }
    req.principal = p
  }
}
