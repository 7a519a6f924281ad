// Exemptions API (/api/v1/admin/exemptions): admins grant and revoke, auditors list. The service re-issues the affected
// class bundle and audits each change.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ClassName } from '../../policies/schema.js'
import type { ServerContext } from '../app.js'
import { IdParams } from '../protocol.js'
import { adminGuard } from './auth.js'

const Bundles = Type.Array(Type.Object({ class: Type.String(), version: Type.Integer() }))

export const ExemptionReply = Type.Object({
  id: Type.String(),
  app: Type.String(),
  device: Type.Union([Type.String(), Type.Null()]),
  class: Type.Union([Type.String(), Type.Null()]),
  reason: Type.String(),
  approvedBy: Type.String(),
  createdAt: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  revokedBy: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]),
})

export const GrantBody = Type.Object(
  {
    app: Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
      description: 'app id from the policies, e.g. telegram',
    }),
    device: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'device id (or give class)' })),
    class: Type.Optional(ClassName),
    reason: Type.String({ minLength: 1, maxLength: 512 }),
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
    expiresIn: Type.Optional(Type.String({ maxLength: 16, description: 'instead of expiresAt: 30m, 12h, 7d, 2w' })),
    approver: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'who approved it (default: the token label or id)' }),
    ),
  },
  { additionalProperties: false },
)

export const ExemptionsQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')])),
    app: Type.Optional(Type.String({ maxLength: 64 })),
    device: Type.Optional(Type.String({ maxLength: 128 })),
    class: Type.Optional(ClassName),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { additionalProperties: false },
)

const WithBundles = Type.Object({ ...ExemptionReply.properties, bundles: Bundles })

export const exemptionRoutes: FastifyPluginAsyncTypebox<{ ctx: ServerContext }> = async (app, { ctx }) => {
  const svc = ctx.integrations!.exemptions
  app.addHook('preHandler', adminGuard(ctx))

  app.get(
    '/exemptions',
    {
      schema: {
        querystring: ExemptionsQuery,
        response: { 200: Type.Object({ exemptions: Type.Array(ExemptionReply) }) },
      },
    },
    async (req) => ({ exemptions: await svc.list(req.query) }),
  )
  app.get('/exemptions/:id', { schema: { params: IdParams, response: { 200: ExemptionReply } } }, async (req) =>
    svc.get(req.params.id),
  )
  app.post(
    '/exemptions',
    { bodyLimit: 16 * 1024, schema: { body: GrantBody, response: { 201: WithBundles } } },
    async (req, reply) => reply.code(201).send(await svc.grant(req.principal!, req.body)),
  )
  app.post('/exemptions/:id/revoke', { schema: { params: IdParams, response: { 200: WithBundles } } }, async (req) =>
    svc.revoke(req.principal!, req.params.id),
  )
}
