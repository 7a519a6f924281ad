// Webhook endpoints (/api/v1/admin/webhooks): admins create and delete, auditors list and read the delivery log.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import type { ServerContext } from '../app.js'
import { IdParams } from '../protocol.js'
import { WEBHOOK_EVENTS } from '../service/events.js'
import { adminGuard } from './auth.js'

const Event = Type.Union(WEBHOOK_EVENTS.map((e) => Type.Literal(e)))
const Format = Type.Union([Type.Literal('json'), Type.Literal('slack'), Type.Literal('teams')])

export const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2048, description: 'http(s) URL that receives the POSTs' }),
    secret: Type.Optional(
      Type.String({
        minLength: 16,
        maxLength: 256,
        description: 'HMAC-SHA256 key (generated and shown once if absent)',
      }),
    ),
    events: Type.Array(Event, { minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true }),
    format: Type.Optional(Format),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
)

const WebhookReply = Type.Object({
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.String()),
  format: Format,
  description: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.Union([Type.String(), Type.Null()]),
})

export const DeliveriesQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Union(['pending', 'sending', 'delivered', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
)

export const webhookRoutes: FastifyPluginAsyncTypebox<{ ctx: ServerContext }> = async (app, { ctx }) => {
  const svc = ctx.integrations!.webhooks
  app.addHook('preHandler', adminGuard(ctx))

  app.get(
    '/webhooks',
    { schema: { response: { 200: Type.Object({ webhooks: Type.Array(WebhookReply) }) } } },
    async () => ({
      webhooks: await svc.list(),
    }),
  )
  app.post(
    '/webhooks',
    {
      bodyLimit: 16 * 1024,
      schema: {
        body: WebhookBody,
        response: { 201: Type.Object({ ...WebhookReply.properties, secret: Type.String() }) },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.create(req.principal!, req.body)),
  )
  app.delete('/webhooks/:id', { schema: { params: IdParams } }, async (req) =>
    svc.remove(req.principal!, req.params.id),
  )
  app.get('/webhooks/:id/deliveries', { schema: { params: IdParams, querystring: DeliveriesQuery } }, async (req) => ({
    deliveries: await svc.deliveries(req.params.id, req.query as { status?: 'pending'; limit?: number }),
  }))
}
