// The web dashboard: server-rendered pages for the security team, calling the service layer directly (no HTTP hop).
// Sign-in takes an admin or auditor token and sets a signed session cookie (see session.ts); every page checks that
// the token is still valid (ctx.auth caches), so revoking the token ends its sessions. State-changing POSTs need the
// session's CSRF token and a same-origin Origin header; auditors may read everything and change nothing.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import type { ServerContext } from '../app.js'
import type { Principal } from '../service/auth.js'
import { writeAudit } from '../service/audit.js'
import { ApiError } from '../service/util.js'
import { CSS, CSS_PATH, JS, JS_PATH } from './assets.js'
import { SnapshotTimer } from './data.js'
import { isExport } from './export.js'
import { Form, registerFormParsers } from './forms.js'
import { html, type Safe } from './html.js'
import { notice, page, type PageUser } from './layout.js'
import { Sessions, loadSessionKey } from './session.js'
import { auditExport, auditPage } from './views/audit.js'
import { deviceExport, devicePage, devicesPage } from './views/devices.js'
import { exemptionsPage, grantExemption, revokeExemption } from './views/exemptions.js'
import { findingsExport, findingsPage } from './views/findings.js'
import { loginPage } from './views/login.js'
import { overviewPage } from './views/overview.js'
import { policiesPage, pushPolicy } from './views/policies.js'

export interface DashboardOptions {
  ctx: ServerContext
  /** The server speaks HTTPS: the cookie gets Secure and the __Host- prefix. */
  secure: boolean
  /** How often to check whether this hour's compliance snapshot exists. */
  snapshotEveryMs?: number
}

interface DashState extends PageUser {
  principal: Principal
}

declare module 'fastify' {
  interface FastifyRequest {
    dashboard?: DashState
  }
  interface FastifyContextConfig {
    /** Reachable without a session (sign-in page, assets). */
    dashboardPublic?: boolean
    /** Admins only (auditors get 403). */
    dashboardAdmin?: boolean
  }
}

const Q = Type.Optional(Type.String({ maxLength: 256 }))
const PageQuery = Type.Object({
  class: Q,
  status: Q,
  os: Q,
  seen: Q,
  app: Q,
  since: Q,
  until: Q,
  device: Q,
  action: Q,
  format: Q,
  next: Q,
  notice: Q,
})
const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) })

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
}

/** Only local paths survive as a post-sign-in target (no `//evil.example`). */
const safeNext = (next: string | undefined) => (next && /^\/(?![/\\])[\w\-./?=&%]*$/.test(next) ? next : '/')

/** A browser always sends Origin on a form POST; a different host means another site is posting for the user. */
function crossSite(req: FastifyRequest): boolean {
  if (req.headers['sec-fetch-site'] === 'cross-site') return true
  const origin = req.headers.origin
  if (origin === undefined) return false
  try {
    return new URL(origin).host !== req.headers.host
  } catch {
    return true
  }
}

export const dashboardRoutes: FastifyPluginAsyncTypebox<DashboardOptions> = async (app, opts) => {
  const { ctx } = opts
  const sessions = new Sessions(await loadSessionKey(ctx.storage.db), opts.secure)
  registerFormParsers(app, 16 * 1024 * 1024)
  const snapshots = new SnapshotTimer(ctx, opts.snapshotEveryMs ?? 300_000, app.log)
  snapshots.start()
  app.addHook('preClose', async () => snapshots.stop())

  const send = (reply: FastifyReply, body: Safe, status = 200) =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body.value)
  const render = (reply: FastifyReply, req: FastifyRequest, title: string, body: Safe, status = 200) =>
    send(reply, page({ title, path: req.routeOptions.url, user: req.dashboard, body }), status)

  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v)
    return payload
  })

  // Sessions and CSRF, before any handler runs.
  app.addHook('preHandler', async (req, reply) => {
    const config = req.routeOptions.config
    if (req.method === 'POST') {
      if (crossSite(req)) throw new ApiError(403, 'forbidden', 'cross-origin form posts are refused')
      if (!(req.body instanceof Form))
        throw new ApiError(415, 'unsupported_media_type', 'the dashboard accepts HTML form posts only')
    }
    if (config.dashboardPublic) return
    const session = sessions.verify(sessions.read(req.headers.cookie))
    const principal = session ? await ctx.auth.adminById(session.tokenId) : undefined
    if (!session || !principal || principal.role !== session.role) {
      if (session) reply.header('set-cookie', sessions.clearCookie())
      if (req.method === 'GET' || req.method === 'HEAD') {
        const next = req.url === '/' ? '' : `?next=${encodeURIComponent(req.url)}`
        return reply.redirect(`/login${next}`, 303)
      }
      throw new ApiError(401, 'unauthorized', 'your session has ended; sign in again')
    }
    req.dashboard = { session, principal, csrf: sessions.csrf(session) }
    if (req.method === 'POST') {
      if (!sessions.checkCsrf(session, (req.body as Form).get('_csrf')))
        throw new ApiError(403, 'forbidden', 'the form is missing its CSRF token or it does not match this session')
      if (config.dashboardAdmin && principal.role !== 'admin')
        throw new ApiError(403, 'forbidden', 'auditors have read-only access; this needs an admin token')
    }
  })

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status =
      err instanceof ApiError
        ? err.statusCode
        : err.validation
          ? 400
          : err.statusCode && err.statusCode >= 400 && err.statusCode < 500
            ? err.statusCode
            : 500
    if (status === 500) req.log.error({ err, url: req.url }, 'dashboard request failed')
    const message = status === 500 ? 'Something went wrong on the server; the log has the details.' : err.message
    const title = { 400: 'Bad request', 401: 'Signed out', 403: 'Not allowed', 404: 'Not found' }[status] ?? 'Error'
    const body = html`<h1>${title}</h1>${notice('error', message)}
      <p>${req.dashboard ? html`<a href="/">Back to the overview</a>` : html`<a href="/login">Sign in</a>`}</p>`
    return send(reply, page({ title, user: req.dashboard, body }), status)
  })

  // ---- assets (content-hashed names: cache forever) ----
  const asset = (type: string, text: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type(type).header('cache-control', 'public, max-age=31536000, immutable').send(text)
  app.get(CSS_PATH, { config: { dashboardPublic: true } }, asset('text/css; charset=utf-8', CSS))
  app.get(JS_PATH, { config: { dashboardPublic: true } }, asset('text/javascript; charset=utf-8', JS))

  // ---- sign-in ----
  app.get('/login', { config: { dashboardPublic: true }, schema: { querystring: PageQuery } }, async (req, reply) => {
    const current = sessions.verify(sessions.read(req.headers.cookie))
    if (current && (await ctx.auth.adminById(current.tokenId))) return reply.redirect(safeNext(req.query.next), 303)
    return send(reply, loginPage({ next: req.query.next, signedOut: req.query.notice === 'signed-out' }))
  })
  app.post('/login', { config: { dashboardPublic: true } }, async (req, reply) => {
    const form = req.body as Form
    const token = form.text('token') ?? ''
    const next = form.text('next')
    const p = token ? await ctx.auth.authenticate(`Bearer ${token}`) : undefined
    if (!p || p.role === 'device') {
      const error = p ? 'Device tokens cannot sign in to the dashboard.' : 'That token is unknown or revoked.'
      return send(reply, loginPage({ next, error }), p ? 403 : 401)
    }
    const role = p.role as 'admin' | 'auditor'
    await writeAudit(ctx.storage.db, p, 'dashboard.sign-in', `token:${p.tokenId}`, {
      ip: req.ip,
      userAgent: String(req.headers['user-agent'] ?? '').slice(0, 200),
    })
    return reply.header('set-cookie', sessions.setCookie(sessions.issue(p.tokenId, role))).redirect(safeNext(next), 303)
  })
  app.post('/logout', async (_req, reply) =>
    reply.header('set-cookie', sessions.clearCookie()).redirect('/login?notice=signed-out', 303),
  )

  // ---- pages ----
  app.get('/', async (req, reply) => render(reply, req, 'Overview', await overviewPage(ctx)))

  app.get('/devices', { schema: { querystring: PageQuery } }, async (req, reply) => {
    if (isExport(req.query.format)) return deviceExport(ctx, req.query, reply)
    return render(reply, req, 'Devices', await devicesPage(ctx, req.query))
  })
  app.get('/devices/:id', { schema: { params: IdParam, querystring: PageQuery } }, async (req, reply) => {
    const body = await devicePage(ctx, req.params.id, req.dashboard!, req.query.notice)
    if (!body) throw new ApiError(404, 'not_found', `There is no device "${req.params.id}".`)
    return render(reply, req, 'Device', body)
  })
  app.post(
    '/devices/:id/revoke',
    { config: { dashboardAdmin: true }, schema: { params: IdParam } },
    async (req, reply) => {
      await ctx.admin.revokeDevice(req.dashboard!.principal, req.params.id)
      return reply.redirect(`/devices/${encodeURIComponent(req.params.id)}?notice=revoked`, 303)
    },
  )

  app.get('/findings', { schema: { querystring: PageQuery } }, async (req, reply) => {
    if (isExport(req.query.format)) return findingsExport(ctx, req.query, reply)
    return render(reply, req, 'Findings', await findingsPage(ctx, req.query))
  })

  app.get('/policies', async (req, reply) => render(reply, req, 'Policies', await policiesPage(ctx, req.dashboard!)))
  app.post('/policies', { config: { dashboardAdmin: true } }, async (req, reply) => {
    const { status, body } = await pushPolicy(ctx, req.dashboard!, req.body as Form)
    return render(reply, req, 'Policies', body, status)
  })

  app.get('/exemptions', { schema: { querystring: PageQuery } }, async (req, reply) =>
    render(reply, req, 'Exemptions', await exemptionsPage(ctx, req.dashboard!, req.query)),
  )
  app.post('/exemptions', { config: { dashboardAdmin: true } }, async (req, reply) => {
    const r = await grantExemption(ctx, req.dashboard!, req.body as Form)
    if ('redirect' in r) return reply.redirect(r.redirect, 303)
    return render(reply, req, 'Exemptions', r.body, r.status)
  })
  app.post(
    '/exemptions/:id/revoke',
    { config: { dashboardAdmin: true }, schema: { params: IdParam } },
    async (req, reply) => {
      await revokeExemption(ctx, req.dashboard!, req.params.id)
      return reply.redirect('/exemptions?notice=revoked', 303)
    },
  )

  app.get('/audit', { schema: { querystring: PageQuery } }, async (req, reply) => {
    if (isExport(req.query.format)) return auditExport(ctx, req.query, reply)
    return render(reply, req, 'Audit log', await auditPage(ctx, req.query))
  })
}
