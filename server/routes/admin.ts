// Admin API (/api/v1/admin/*): admin tokens change things, auditor tokens read. Every write is audited by the service.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerContext } from '../app.js'
import {
  AuditQuery,
  ClassBody,
  DevicesQuery,
  EnrollSecretBody,
  FindingsQuery,
  FormatQuery,
  HistoryQuery,
  IdParams,
  PolicyPushBody,
  TokenBody,
} from '../protocol.js'
import type { Principal } from '../service/auth.js'
import type { QueryService } from '../service/queries.js'
import { notFound, toCsv } from '../service/util.js'
import { adminGuard } from './auth.js'

const who = (req: FastifyRequest): Principal => req.principal!

function csv(reply: FastifyReply, name: string, columns: string[], rows: Record<string, unknown>[]) {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}.csv"`)
    .send(toCsv(columns, rows))
}

/** The findings export's CSV shape (also used by the dashboard's export links). */
/** The devices export's columns (the API and the dashboard's export share them). */
export const DEVICES_CSV_COLUMNS = [
  'id',
  'hostname',
  'class',
  'status',
  'openFindings',
  'bundleVersion',
  'os',
  'agentVersion',
  'lastSeen',
  'lastReportAt',
  'enrolledAt',
]

export const AUDIT_CSV_COLUMNS = ['seq', 'at', 'actor', 'role', 'action', 'target', 'details']

export const FINDINGS_CSV_COLUMNS = [
  'scannedAt',
  'deviceId',
  'hostname',
  'class',
  'appId',
  'appName',
  'policy',
  'signal',
  'matched',
  'subject',
  'status',
  'actions',
  'reportId',
]
export const findingsCsvRows = (findings: Awaited<ReturnType<QueryService['findings']>>) =>
  findings.map((f) => ({ ...f, actions: f.actions.map((a) => `${a.action}:${a.result}`).join(' ') }))

export const adminRoutes: FastifyPluginAsyncTypebox<{ ctx: ServerContext }> = async (app, { ctx }) => {
  app.addHook('preHandler', adminGuard(ctx))
  // Admin requests are few and worth a log line each; device requests are not logged (errors are, by the handler).
  app.addHook('onResponse', async (req, reply) => {
    req.log.info(
      { method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: reply.elapsedTime },
      'admin request',
    )
  })

  app.get('/whoami', async (req) => ({ tokenId: who(req).tokenId, role: who(req).role }))

  // ---- classes ----
  app.get('/classes', async () => ({ classes: await ctx.admin.listClasses() }))
  app.post('/classes', { bodyLimit: 16 * 1024, schema: { body: ClassBody } }, async (req, reply) => {
    return reply.code(201).send(await ctx.admin.createClass(who(req), req.body.name, req.body.description))
  })

  // ---- enroll secrets ----
  app.get('/enroll-secrets', async () => ({ secrets: await ctx.admin.listEnrollSecrets() }))
  app.post('/enroll-secrets', { bodyLimit: 16 * 1024, schema: { body: EnrollSecretBody } }, async (req, reply) => {
    return reply.code(201).send(await ctx.admin.createEnrollSecret(who(req), req.body))
  })
  app.post('/enroll-secrets/:id/revoke', { schema: { params: IdParams } }, async (req) =>
    ctx.admin.revokeEnrollSecret(who(req), req.params.id),
  )

  // ---- tokens ----
  app.get('/tokens', async () => ({ tokens: await ctx.admin.listTokens() }))
  app.post('/tokens', { bodyLimit: 16 * 1024, schema: { body: TokenBody } }, async (req, reply) => {
    return reply.code(201).send(await ctx.admin.createToken(who(req), req.body.role, req.body.label))
  })
  app.post('/tokens/:id/revoke', { schema: { params: IdParams } }, async (req) =>
    ctx.admin.revokeToken(who(req), req.params.id),
  )

  // ---- policy ----
  app.post('/policies', { bodyLimit: 16 * 1024 * 1024, schema: { body: PolicyPushBody } }, async (req, reply) => {
    const result = await ctx.policy.push(req.body, who(req))
    ctx.events.pushed(who(req).tokenId, result)
    return reply.code(result.dryRun ? 200 : 201).send(result)
  })
  app.get('/policies', async () => ctx.policy.list())
  app.get('/policies/history', { schema: { querystring: HistoryQuery } }, async (req) => ({
    bundles: await ctx.policy.history(req.query.class, req.query.limit),
  }))

  // ---- devices ----
  app.get('/devices', { schema: { querystring: DevicesQuery } }, async (req, reply) => {
    const devices = await ctx.queries.devices(req.query)
    if (req.query.format === 'csv') {
      return csv(reply, 'devices', DEVICES_CSV_COLUMNS, devices)
    }
    return { devices }
  })
  app.get('/devices/:id', { schema: { params: IdParams } }, async (req) => {
    const d = await ctx.queries.device(req.params.id)
    if (!d) throw notFound(`no device "${req.params.id}"`)
    return d
  })
  app.post('/devices/:id/revoke', { schema: { params: IdParams } }, async (req) =>
    ctx.admin.revokeDevice(who(req), req.params.id),
  )

  // ---- queries ----
  app.get('/compliance', { schema: { querystring: FormatQuery } }, async (req, reply) => {
    const summary = await ctx.queries.compliance()
    if (req.query.format === 'csv') {
      const cols = ['class', 'total', 'compliant', 'noncompliant', 'remediated', 'unknown', 'pending']
      return csv(reply, 'compliance', cols, summary.classes)
    }
    return summary
  })
  app.get('/findings', { schema: { querystring: FindingsQuery } }, async (req, reply) => {
    const findings = await ctx.queries.findings(req.query)
    if (req.query.format === 'csv') return csv(reply, 'findings', FINDINGS_CSV_COLUMNS, findingsCsvRows(findings))
    return { findings }
  })
  app.get('/rollout', { schema: { querystring: FormatQuery } }, async (req, reply) => {
    const r = await ctx.queries.rollout((cls) => ctx.policy.get(cls)?.version)
    if (req.query.format === 'csv') {
      const rows = r.classes.flatMap((c) =>
        c.versions.map((v) => ({
          class: c.class,
          currentVersion: c.currentVersion,
          version: v.version,
          devices: v.devices,
        })),
      )
      return csv(reply, 'rollout', ['class', 'currentVersion', 'version', 'devices'], rows)
    }
    return r
  })
  app.get('/audit', { schema: { querystring: AuditQuery } }, async (req, reply) => {
    const entries = await ctx.queries.audit(req.query)
    if (req.query.format === 'csv') return csv(reply, 'audit', AUDIT_CSV_COLUMNS, entries)
    return { entries }
  })
}
