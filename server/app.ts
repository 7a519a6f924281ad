// buildApp: storage + services + Fastify routes, without listening (tests and main.ts both use it).
import { join } from 'node:path'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyError, type FastifyInstance, type FastifySchemaCompiler, LogController } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'
import { type IntegrationOptions, type Integrations, setupIntegrations } from './integrations.js'
import { dashboardRoutes } from './dashboard/index.js'
import { adminRoutes } from './routes/admin.js'
import { deviceRoutes } from './routes/device.js'
import { AdminService, bootstrapAdmin } from './service/admin.js'
import { AuthService } from './service/auth.js'
import { EnrollmentService } from './service/enrollment.js'
import { EventBus } from './service/events.js'
import { activeExemptions } from './service/exemptions.js'
import { loadOrCreateSigningKey, type SigningKey } from './service/keys.js'
import { PolicyService } from './service/policy.js'
import { QueryService } from './service/queries.js'
import { Ingestor } from './service/reports.js'
import { ApiError } from './service/util.js'
import { openStorage, type Storage } from './storage/db.js'

export interface ServerOptions {
  dataDir: string
  databaseUrl?: string
  /** Defaults to <dataDir>/signing-key.pem. Instances sharing one PostgreSQL must share this key. */
  signingKeyFile?: string
  /** false = silent (tests); otherwise pino options. */
  logger?: boolean | { level?: string; stream?: NodeJS.WritableStream }
  /** Admin token for automation (INTERDICT_ADMIN_TOKEN); registered if unknown. */
  adminToken?: string
  heartbeatIntervalSec?: number
  bundleTtlDays?: number
  reissueBeforeHours?: number
  maintenanceSec?: number
  batchDelayMs?: number
  maxBatch?: number
  authCacheMs?: number
  https?: { cert: string | Buffer; key: string | Buffer }
  /** Events file, public metrics, webhook timing (server/integrations.ts). */
  integrations?: IntegrationOptions
}

export interface ServerContext {
  storage: Storage
  key: SigningKey
  auth: AuthService
  policy: PolicyService
  enrollment: EnrollmentService
  ingestor: Ingestor
  admin: AdminService
  queries: QueryService
  heartbeatIntervalSec: number
  /** Findings, enrollments, pushes, exemption changes: what the SIEM stream, webhooks and metrics follow. */
  events: EventBus
  /** Set by setupIntegrations. */
  integrations?: Integrations
}

/** What first start created, for main.ts to print once. */
export interface Created {
  signingKey?: string
  adminToken?: string
  migrations: string[]
  warnings: string[]
}

// TypeBox validation for every route: the body is never coerced (a string "5" is not a number), query strings and
// params are converted first because they are text by nature.
const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema)
  return (value) => {
    const v = httpPart === 'body' ? value : Value.Convert(schema, value)
    if (check.Check(v)) return { value: v }
    const errors = [...check.Errors(v)].filter(
      (e) => !(e.keyword === 'boolean' && e.schemaPath.endsWith('additionalProperties')),
    )
    return { error: errors as never }
  }
}

interface TbError {
  instancePath: string
  message?: string
  keyword: string
  params?: Record<string, unknown>
}

function describeValidation(errors: TbError[], part: string): string {
  const seen = new Set<string>()
  const out: string[] = []
  for (const e of errors) {
    let msg: string
    const at = `${part}${e.instancePath || ''}`
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params?.additionalProperties as string[] | undefined) ?? []
      msg = `${at}: unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')}`
    } else if (e.keyword === 'required') {
      const req = (e.params?.requiredProperties as string[] | undefined) ?? []
      msg = `${at}: missing required field${req.length > 1 ? 's' : ''} ${req.map((k) => `"${k}"`).join(', ')}`
    } else msg = `${at} ${e.message ?? 'is invalid'}`
    if (!seen.has(msg)) out.push(msg)
    seen.add(msg)
    if (out.length >= 5) break
  }
  return out.join('; ') || `${part} is invalid`
}

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
}

export async function buildApp(
  opts: ServerOptions,
): Promise<{ app: FastifyInstance; ctx: ServerContext; created: Created }> {
  const app = Fastify({
    logger: opts.logger === undefined ? { level: 'info' } : opts.logger,
    // Per-request logs would cost more than the request at 20,000 polls/s; admin requests are logged in onResponse.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    ...(opts.https ? { https: opts.https } : {}),
    // Long-polls hold requests up to 60 s; keep-alive lets agents and load balancers reuse connections.
    keepAliveTimeout: 75_000,
    requestTimeout: 120_000,
    forceCloseConnections: true,
    return503OnClosing: true,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    schemaErrorFormatter: (errors, part) => new Error(describeValidation(errors as unknown as TbError[], part)),
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  // The API speaks JSON only: anything else is 415, not a confusing schema error.
  app.removeContentTypeParser('text/plain')

  const storage = await openStorage({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl }, (err) =>
    app.log.error({ err }, 'database connection error'),
  )
  app.log.info({ storage: storage.location, reportWriter: storage.ingest?.mode ?? 'pool' }, 'storage open')
  try {
    const keyFile = opts.signingKeyFile ?? join(opts.dataDir, 'signing-key.pem')
    const { key, created: keyCreated, warnings } = await loadOrCreateSigningKey(storage.db, keyFile)
    const adminToken = await bootstrapAdmin(storage.db, opts.adminToken)
    const heartbeatIntervalSec = opts.heartbeatIntervalSec ?? 60
    const auth = new AuthService(storage.db, opts.authCacheMs ?? 15_000)
    const policy = new PolicyService(
      storage.db,
      storage.notifier,
      key,
      {
        ttlDays: opts.bundleTtlDays ?? 7,
        reissueBeforeMs: (opts.reissueBeforeHours ?? 24) * 3_600_000,
        maintenanceMs: (opts.maintenanceSec ?? 300) * 1000,
        exemptions: activeExemptions,
      },
      app.log,
    )
    // Revocations must take effect on every instance: drop their token caches.
    const announceRevoke = () => {
      storage.notifier.publish({ type: 'auth-flush' }).catch((err) => app.log.warn({ err }, 'auth-flush notify failed'))
    }
    storage.notifier.subscribe((e) => {
      if (e.type === 'auth-flush') auth.flush()
    })
    await policy.start()
    const ctx: ServerContext = {
      storage,
      key,
      auth,
      policy,
      enrollment: new EnrollmentService(storage.db, auth, key, heartbeatIntervalSec, announceRevoke),
      ingestor: new Ingestor(storage, { delayMs: opts.batchDelayMs ?? 3, maxBatch: opts.maxBatch ?? 1000 }, app.log),
      admin: new AdminService(storage.db, auth, policy, announceRevoke),
      queries: new QueryService(storage.db, 3 * heartbeatIntervalSec * 1000),
      heartbeatIntervalSec,
      events: new EventBus(app.log),
    }

    app.setErrorHandler((err: FastifyError, req, reply) => {
      if (err instanceof ApiError) {
        return reply.code(err.statusCode).send({ error: err.code, message: err.message, ...(err.extra ?? {}) })
      }
      if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message })
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
      if (status === 500) {
        req.log.error({ err, url: req.url }, 'request failed')
        return reply.code(500).send({ error: 'internal', message: 'internal server error' })
      }
      let message = err.message
      if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError)
        message = `body is not valid JSON: ${err.message}`
      if (status === 413) message = 'request body is larger than this route accepts'
      return reply.code(status).send({ error: CODES[status] ?? 'bad_request', message })
    })
    app.setNotFoundHandler((req, reply) => {
      reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` })
    })
    await setupIntegrations(app, ctx, opts)
    await app.register(deviceRoutes, { ctx })
    await app.register(adminRoutes, { ctx, prefix: '/api/v1/admin' })
    await app.register(dashboardRoutes, {
      ctx,
      secure: Boolean(opts.https),
      snapshotEveryMs: (opts.maintenanceSec ?? 300) * 1000,
    })

    app.addHook('preClose', async () => {
      policy.stop()
    })
    app.addHook('onClose', async () => {
      await ctx.ingestor.drain()
      await storage.close()
    })
    return {
      app,
      ctx,
      created: {
        signingKey: keyCreated ? keyFile : undefined,
        adminToken,
        migrations: storage.migrated,
        warnings,
      },
    }
  } catch (err) {
    await storage.close().catch(() => {})
    throw err
  }
}
