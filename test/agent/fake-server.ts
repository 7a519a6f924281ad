// A small, faithful stand-in for the server's device protocol (DESIGN §4) on node:http: enroll, long-poll policy
// with ETag, idempotent reports (202 once durably "stored"), heartbeats. Can go down and come back on the same port.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { compileBundle } from '../../policies/compile.js'
import { generateSigningKey, signBundle } from '../../policies/sign.js'
import type { PolicyFile, SignedBundle } from '../../policies/schema.js'

export interface Received {
  route: string
  body: Record<string, unknown>
  auth?: string
}

export class FakeServer {
  readonly key = generateSigningKey()
  readonly secrets = new Map<string, string>([['s3cret', 'military']])
  readonly tokens = new Map<string, string>()
  bundles = new Map<string, { signed: unknown; etag: string }>()
  /** Every accepted report/heartbeat, in arrival order (duplicates by reportId are not appended again). */
  readonly received: Received[] = []
  readonly reportIds = new Set<string>()
  duplicates = 0
  polls = 0
  /** Force an answer status for reports (e.g. 500) to simulate a failing server. */
  reportStatus: number | undefined
  private server: http.Server | https.Server | undefined
  private tls: { key: string; cert: string } | undefined
  private waiters = new Set<() => void>()
  port = 0

  get url() {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`
  }

  async start(port = 0, tls?: { key: string; cert: string }) {
    if (tls) this.tls = tls
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res)
    this.server = this.tls ? https.createServer(this.tls, handler) : http.createServer(handler)
    this.server.keepAliveTimeout = 1000
    this.server.listen(port, '127.0.0.1')
    await once(this.server, 'listening')
    this.port = (this.server.address() as AddressInfo).port
  }

  async stop() {
    if (!this.server) return
    for (const w of this.waiters) w()
    this.server.closeAllConnections()
    await new Promise<void>((r) => this.server!.close(() => r()))
    this.server = undefined
  }

  /** Sign and publish a bundle for a class; wakes long-polls. */
  push(policies: PolicyFile[], cls: string, version: number, opts: { now?: Date; ttlDays?: number } = {}) {
    const signed = signBundle(compileBundle(policies, cls, { version, ...opts }), this.key.privateKeyPem)
    this.publish(cls, signed, `"${cls}.${version}"`)
    return signed
  }

  publish(cls: string, signed: SignedBundle | unknown, etag: string) {
    this.bundles.set(cls, { signed, etag })
    for (const w of [...this.waiters]) w()
  }

  reports() {
    return this.received.filter((r) => r.route === '/api/v1/reports').map((r) => r.body)
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x')
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
    const json = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(data))
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/enroll') {
      const cls = this.secrets.get(body?.secret)
      if (!cls) return json(401, { error: 'unauthorized', message: 'unknown enroll secret' })
      const token = `tok-${this.tokens.size + 1}`
      const deviceId = `dev-${this.tokens.size + 1}`
      this.tokens.set(token, cls)
      return json(200, {
        deviceId,
        deviceToken: token,
        class: cls,
        policyKey: this.key.publicKeyPem,
        policyKeyId: 'x',
        heartbeatIntervalSec: 60,
      })
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const cls = token ? this.tokens.get(token) : undefined
    if (!cls) return json(401, { error: 'unauthorized', message: 'bad device token' })
    if (req.method === 'GET' && url.pathname === '/api/v1/policy') {
      this.polls++
      const wait = Math.min(60, Number(url.searchParams.get('wait') ?? 0))
      const inm = req.headers['if-none-match']
      const answer = () => {
        const b = this.bundles.get(cls)
        if (!b) return false
        if (b.etag === inm) return false
        json(200, b.signed, { etag: b.etag })
        return true
      }
      if (answer()) return
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, wait * 1000)
          const waiter = () => {
            if (this.bundles.get(cls)?.etag !== inm) done()
          }
          function done() {
            clearTimeout(t)
            resolve()
          }
          this.waiters.add(waiter)
          req.socket.once('close', done)
          t.unref()
          const cleanup = () => this.waiters.delete(waiter)
          res.once('close', cleanup)
          res.once('finish', cleanup)
        })
        if (res.writableEnded || res.destroyed) return
        if (answer()) return
      }
      if (!this.bundles.has(cls)) return json(404, { error: 'not_found', message: 'no policy for this class' })
      res.writeHead(304)
      return res.end()
    }
    if (req.method === 'POST' && (url.pathname === '/api/v1/reports' || url.pathname === '/api/v1/heartbeat')) {
      if (this.reportStatus) return json(this.reportStatus, { error: 'x', message: 'forced failure' })
      if (url.pathname === '/api/v1/reports') {
        if (this.reportIds.has(body.reportId)) {
          this.duplicates++
          return json(202, { reportId: body.reportId, accepted: true, duplicate: true })
        }
        this.reportIds.add(body.reportId)
      }
      this.received.push({ route: url.pathname, body, ...(token ? { auth: token } : {}) })
      return json(202, { accepted: true })
    }
    json(404, { error: 'not_found', message: url.pathname })
  }
}

// The banned process name in these tests: unique per test file, so an agent under test in one file can never kill a
// process another file (or the real Telegram test) starts. Short enough for the 15-character comm name.
export const BANNED_NAME = `tgd-${randomBytes(3).toString('hex')}`

export const telegramPolicy = (actions: string[] = ['report', 'kill']): PolicyFile =>
  ({
    id: 'ban-telegram-test',
    title: 'test',
    apps: [{ id: 'telegram', name: 'Telegram', match: { processNames: [BANNED_NAME] } }],
    assignments: { military: { actions }, standard: { actions: ['report'] } },
  }) as PolicyFile
