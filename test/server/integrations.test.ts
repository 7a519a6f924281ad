// Integrations: webhooks to a local receiver (signature, retry after a 500, delivery log, Slack form, silent devices,
// once-only delivery across instances), /metrics read by a strict Prometheus text-format parser, the OpenAPI document
// against the routes Fastify actually has, and the JSON-lines event stream.
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ADMIN,
  backends,
  call,
  createAuditor,
  enrollDevices,
  finding,
  makeDatabase,
  POLICY_YAML,
  report,
  startServer,
  type TestServer,
} from './helpers.js'
import { type Family, parsePrometheus } from './prom.js'

// ---- a local webhook receiver ----

interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: string
}

async function receiver() {
  const got: Received[] = []
  /** Status codes to answer per path, in order; 200 once they run out. */
  const plan = new Map<string, number[]>()
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => {
      body += d
    })
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body })
      const status = plan.get(req.url ?? '')?.shift() ?? 200
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'nope')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, got, plan, close: () => new Promise<void>((r) => server.close(() => r())) }
}

const until = async <T>(fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 25))
  }
}

const value = (fams: Map<string, Family>, sample: string, labels: Record<string, string> = {}) =>
  [...fams.values()]
    .flatMap((f) => f.samples)
    .find((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

// ---- the tests ----

describe.each(backends)('integrations on %s', (backend) => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let srv: TestServer
  let rx: Awaited<ReturnType<typeof receiver>>
  let auditor: string
  let devices: Awaited<ReturnType<typeof enrollDevices>>['devices']
  let eventsFile: string
  const SECRET = 'test-webhook-secret-0123456789'

  const send = (token: string, findings: unknown[], over: Record<string, unknown> = {}) =>
    call(srv.url, 'POST', '/api/v1/reports', { token, body: report({ findings, ...over }) })

  beforeAll(async () => {
    db = await makeDatabase(backend)
    eventsFile = join(db.dataDir, 'events.jsonl')
    rx = await receiver()
    srv = await startServer(db, {
      integrations: { eventsFile, webhooks: { retryBaseMs: 100, retryMaxMs: 400, pollMs: 50, timeoutMs: 3000 } },
    })
    auditor = (await createAuditor(srv.url)).token
    devices = (await enrollDevices(srv.url, 'military', 4, 'int')).devices
    expect(
      (await call(srv.url, 'POST', '/api/v1/admin/policies', { token: ADMIN, body: { policies: [POLICY_YAML] } }))
        .status,
    ).toBe(201)
  })
  afterAll(async () => {
    await srv?.close()
    await rx?.close()
    await db?.drop()
  })

  it('delivers a new violation signed, retries after a 500, and logs both attempts', async () => {
    const hook = await call(srv.url, 'POST', '/api/v1/admin/webhooks', {
      token: ADMIN,
      body: { url: `${rx.url}/json`, secret: SECRET, events: ['violation.new'] },
    })
    expect(hook.status).toBe(201)
    expect(hook.body).toMatchObject({ format: 'json', events: ['violation.new'], secret: SECRET })
    const listed = await call(srv.url, 'GET', '/api/v1/admin/webhooks', { token: auditor })
    expect(JSON.stringify(listed.body)).not.toContain(SECRET)
    rx.plan.set('/json', [500])

    const dev = devices[0]!
    expect((await send(dev.deviceToken, [finding('f1')])).status).toBe(202)
    const hits = await until(() => {
      const h = rx.got.filter((g) => g.path === '/json')
      return h.length >= 2 ? h : undefined
    })
    for (const h of hits) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(h.body).digest('hex')}`
      expect(h.headers['x-interdict-signature']).toBe(expected)
      expect(h.headers['x-interdict-event']).toBe('violation.new')
      expect(h.headers['content-type']).toBe('application/json')
      const ts = Number(h.headers['x-interdict-timestamp'])
      expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(30)
      const body = JSON.parse(h.body)
      expect(Math.abs(Date.parse(body.timestamp) / 1000 - ts)).toBeLessThan(1.5)
      expect(body).toMatchObject({
        event: 'violation.new',
        id: h.headers['x-interdict-delivery'],
        data: {
          deviceId: dev.deviceId,
          hostname: 'host-0',
          class: 'military',
          appId: 'chatapp',
          signal: 'process-name',
        },
      })
    }
    // Tampering is detectable: the signature is over these exact bytes.
    expect(createHmac('sha256', SECRET).update(`${hits[1]!.body} `).digest('hex')).not.toBe(
      hits[1]!.headers['x-interdict-signature'],
    )

    const log = await until(async () => {
      const r = await call(srv.url, 'GET', `/api/v1/admin/webhooks/${hook.body.id}/deliveries`, { token: auditor })
      return r.body.deliveries[0]?.status === 'delivered' ? r.body.deliveries : undefined
    })
    expect(log).toHaveLength(1)
    expect(log[0]).toMatchObject({ event: 'violation.new', status: 'delivered', attempts: 2 })
    expect(log[0].log.map((a: { statusCode: number }) => a.statusCode)).toEqual([500, 200])
    expect(log[0].log[0].error).toBe('HTTP 500')

    // Still open in the next report: not new. Gone from a full scan, then back: new again.
    await send(dev.deviceToken, [finding('f2')])
    await srv.ctx.integrations!.violations.settle()
    await srv.ctx.integrations!.webhooks.settle()
    expect(rx.got.filter((g) => g.path === '/json')).toHaveLength(2)
    await send(dev.deviceToken, [])
    await send(dev.deviceToken, [finding('f3')])
    await until(() => rx.got.filter((g) => g.path === '/json').length === 3)
    // A remediated finding (every enforcing action succeeded) is no violation.
    await send(devices[1]!.deviceToken, [finding('k1')], {
      actions: [{ finding: 'k1', action: 'kill', result: 'success' }],
    })
    await srv.ctx.integrations!.violations.settle()
    await srv.ctx.integrations!.webhooks.settle()
    expect(rx.got.filter((g) => g.path === '/json')).toHaveLength(3)
  })

  it('sends the Slack form as {text}, and device.silent once per silence', async () => {
    const slack = await call(srv.url, 'POST', '/api/v1/admin/webhooks', {
      token: ADMIN,
      body: { url: `${rx.url}/slack`, events: ['violation.new', 'device.silent'], format: 'slack' },
    })
    expect(slack.status).toBe(201)
    expect(slack.body.secret).toMatch(/^whsec_/)
    await send(devices[2]!.deviceToken, [finding('s1')])
    const msg = await until(() => rx.got.find((g) => g.path === '/slack'))
    const body = JSON.parse(msg.body)
    expect(Object.keys(body)).toEqual(['text'])
    expect(body.text).toMatch(/ChatApp \(chatapp\) found on host-2 \[class military\]/)
    expect(msg.headers['x-interdict-signature']).toBe(
      `sha256=${createHmac('sha256', slack.body.secret).update(msg.body).digest('hex')}`,
    )

    // Device 3 goes quiet: its last contact moves back past the unknown cutoff (3 heartbeat intervals).
    const silent = devices[3]!
    await srv.ctx.storage.db
      .updateTable('devices')
      .set({ last_seen: Date.now() - 3_600_000 })
      .where('id', '=', silent.deviceId)
      .execute()
    await srv.ctx.integrations!.violations.checkSilent()
    await srv.ctx.integrations!.violations.checkSilent()
    const silentMsgs = await until(() => {
      const list = rx.got.filter((g) => g.path === '/slack' && g.body.includes('gone silent'))
      return list.length > 0 ? list : undefined
    })
    await srv.ctx.integrations!.webhooks.settle()
    expect(rx.got.filter((g) => g.path === '/slack' && g.body.includes('gone silent'))).toHaveLength(1)
    expect(JSON.parse(silentMsgs[0]!.body).text).toMatch(/device host-3 \[class military\] has gone silent/)
    // It reports again, then falls silent again: a new silence, a new message.
    await send(silent.deviceToken, [])
    await srv.ctx.storage.db
      .updateTable('devices')
      .set({ last_seen: Date.now() - 1_800_000 })
      .where('id', '=', silent.deviceId)
      .execute()
    await srv.ctx.integrations!.violations.checkSilent()
    await until(() => rx.got.filter((g) => g.path === '/slack' && g.body.includes('gone silent')).length === 2)

    // Deleting an endpoint: gone from the list, auditors may not.
    expect((await call(srv.url, 'DELETE', `/api/v1/admin/webhooks/${slack.body.id}`, { token: auditor })).status).toBe(
      403,
    )
    expect((await call(srv.url, 'DELETE', `/api/v1/admin/webhooks/${slack.body.id}`, { token: ADMIN })).status).toBe(
      200,
    )
    const list = await call(srv.url, 'GET', '/api/v1/admin/webhooks', { token: ADMIN })
    expect(list.body.webhooks.map((w: { id: string }) => w.id)).not.toContain(slack.body.id)
    const audit = await call(srv.url, 'GET', '/api/v1/admin/audit?action=webhook.create', { token: ADMIN })
    expect(JSON.stringify(audit.body)).not.toContain(SECRET)
  })

  it('serves /metrics that a strict Prometheus parser accepts, with the numbers of this server', async () => {
    expect((await call(srv.url, 'GET', '/metrics')).status).toBe(401)
    expect((await call(srv.url, 'GET', '/metrics', { token: devices[0]!.deviceToken })).status).toBe(403)

    // A long-poll answered by a push: push latency.
    const dev = devices[0]!
    const cur = await call(srv.url, 'GET', '/api/v1/policy', { token: dev.deviceToken })
    const poll = call(srv.url, 'GET', '/api/v1/policy?wait=20', {
      token: dev.deviceToken,
      headers: { 'if-none-match': cur.headers.get('etag')! },
    })
    await until(() => (srv.ctx.policy.waiterCount() > 0 ? true : undefined))
    const mid = parsePrometheus((await call(srv.url, 'GET', '/metrics', { token: auditor })).text)
    expect(value(mid, 'interdict_longpoll_waiters')).toBeGreaterThanOrEqual(1)
    const g = await call(srv.url, 'POST', '/api/v1/admin/exemptions', {
      token: ADMIN,
      body: { app: 'chatapp', class: 'military', reason: 'metrics', expiresIn: '1h' },
    })
    expect(g.status).toBe(201)
    expect((await poll).status).toBe(200)

    const res = await call(srv.url, 'GET', '/metrics', { token: auditor })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const m = parsePrometheus(res.text)
    for (const [name, type] of [
      ['interdict_reports_ingested_total', 'counter'],
      ['interdict_devices', 'gauge'],
      ['interdict_findings_total', 'counter'],
      ['interdict_open_violations', 'gauge'],
      ['interdict_push_latency_seconds', 'histogram'],
      ['interdict_longpoll_waiters', 'gauge'],
      ['interdict_http_request_duration_seconds', 'histogram'],
      ['interdict_webhook_deliveries_total', 'counter'],
    ]) {
      expect(m.get(name!)?.type, name).toBe(type)
    }
    expect(value(m, 'interdict_reports_ingested_total', { result: 'stored' })).toBeGreaterThanOrEqual(6)
    expect(value(m, 'interdict_findings_total', { app: 'chatapp', status: 'open' })).toBeGreaterThanOrEqual(4)
    expect(value(m, 'interdict_findings_total', { app: 'chatapp', status: 'remediated' })).toBe(1)
    expect(value(m, 'interdict_push_latency_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(value(m, 'interdict_webhook_deliveries_total', { event: 'violation.new', result: 'retry' })).toBe(1)
    const summary = await call(srv.url, 'GET', '/api/v1/admin/compliance', { token: auditor })
    const mil = summary.body.classes.find((c: { class: string }) => c.class === 'military')
    for (const status of ['compliant', 'noncompliant', 'remediated', 'unknown', 'pending'])
      expect(value(m, 'interdict_devices', { class: 'military', status }), status).toBe(mil[status])
    // Request latency is labelled by route pattern, never by the raw URL.
    expect(
      value(m, 'interdict_http_request_duration_seconds_count', {
        route: '/api/v1/admin/webhooks/:id/deliveries',
        method: 'GET',
        status: '200',
      }),
    ).toBeGreaterThanOrEqual(1)
    const routes = new Set(m.get('interdict_http_request_duration_seconds')!.samples.map((s) => s.labels.route))
    for (const r of routes) expect(r).not.toMatch(/whk_|dev_|\?/)
  })

  it('serves an OpenAPI document listing every registered route', async () => {
    const doc = await call(srv.url, 'GET', '/api/docs')
    expect(doc.status).toBe(200)
    expect(doc.body.openapi).toBe('3.1.0')
    const documented = new Set<string>()
    for (const [path, ops] of Object.entries(doc.body.paths as Record<string, Record<string, unknown>>))
      for (const method of Object.keys(ops))
        documented.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)
    // What Fastify itself says it routes (its printed tree, one full path per line with its methods).
    const registered = new Set<string>()
    const stack: string[] = []
    for (const line of srv.app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^(.*?)[└├]── (\S+) \(([A-Z, ]+)\)$/.exec(line)
      if (!m) continue
      const depth = m[1]!.length / 4
      const path = (depth > 0 ? stack[depth - 1]! : '') + m[2]!
      stack[depth] = path
      for (const method of m[3]!.split(', ')) if (method !== 'HEAD') registered.add(`${method} ${path}`)
    }
    // The document covers the machine interface; the dashboard's HTML pages are left out on purpose.
    for (const r of registered) if (!/^[A-Z]+ \/(api|healthz|metrics)(\/|$)/.test(r)) registered.delete(r)
    expect(registered.size).toBeGreaterThan(30)
    expect([...registered].filter((r) => !documented.has(r))).toEqual([])
    expect([...documented].filter((r) => !registered.has(r))).toEqual([])
    const grant = doc.body.paths['/api/v1/admin/exemptions'].post
    expect(grant.requestBody.content['application/json'].schema.required).toEqual(['app', 'reason'])
    expect(doc.body.paths['/api/v1/admin/devices'].get.parameters.map((p: { name: string }) => p.name)).toContain(
      'status',
    )
    expect(doc.body.paths['/api/v1/admin/exemptions/{id}/revoke'].post.parameters[0]).toMatchObject({
      name: 'id',
      in: 'path',
      required: true,
    })
    const ui = await call(srv.url, 'GET', '/api/docs/ui')
    expect(ui.text).toContain('/api/docs')
  })

  it('writes the event stream as JSON lines with stable fields', async () => {
    await srv.ctx.integrations!.violations.settle()
    const lines = readFileSync(eventsFile, 'utf8').trimEnd().split('\n')
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    for (const e of events) {
      expect(e.type).toBeTypeOf('string')
      expect(new Date(e.time as string).toISOString()).toBe(e.time)
    }
    const types = new Set(events.map((e) => e.type))
    for (const t of [
      'enrollment',
      'policy.push',
      'finding',
      'action',
      'exemption.grant',
      'violation.new',
      'device.silent',
    ])
      expect(types, t).toContain(t)
    expect(events.find((e) => e.type === 'enrollment')).toMatchObject({
      deviceId: devices[0]!.deviceId,
      class: 'military',
      hostname: 'host-0',
      os: 'linux',
    })
    expect(events.find((e) => e.type === 'finding')).toMatchObject({
      deviceId: devices[0]!.deviceId,
      class: 'military',
      appId: 'chatapp',
      signal: 'process-name',
      status: 'open',
      reportId: expect.any(String),
      scannedAt: expect.any(String),
    })
    expect(events.find((e) => e.type === 'action')).toMatchObject({
      action: 'kill',
      result: 'success',
      appId: 'chatapp',
    })
    expect(events.find((e) => e.type === 'policy.push')).toMatchObject({
      policySetVersion: 1,
      bundles: expect.arrayContaining([{ class: 'military', version: expect.any(Number) }]),
    })
    expect(events.find((e) => e.type === 'exemption.grant')).toMatchObject({
      exemption: { app: 'chatapp', class: 'military', status: 'active' },
    })
  })

  it.runIf(backend === 'postgres')('sends each delivery once with two instances on one database', async () => {
    const second = await startServer(
      { dataDir: db.dataDir, databaseUrl: db.databaseUrl },
      { integrations: { webhooks: { retryBaseMs: 100, pollMs: 20 } } },
    )
    try {
      const hook = await call(srv.url, 'POST', '/api/v1/admin/webhooks', {
        token: ADMIN,
        body: { url: `${rx.url}/once`, secret: SECRET, events: ['violation.new'] },
      })
      const { devices: fleet } = await enrollDevices(second.url, 'military', 12, 'once')
      // Reports land on both instances; both dispatchers poll the same table.
      await Promise.all(
        fleet.map((d, i) =>
          call(i % 2 ? second.url : srv.url, 'POST', '/api/v1/reports', {
            token: d.deviceToken,
            body: report({ findings: [finding(`o${i}`)] }),
          }),
        ),
      )
      const got = await until(() => {
        const list = rx.got.filter((g) => g.path === '/once')
        return list.length >= 12 ? list : undefined
      })
      await new Promise((r) => setTimeout(r, 300))
      const ids = rx.got.filter((g) => g.path === '/once').map((g) => g.headers['x-interdict-delivery'])
      expect(ids).toHaveLength(12)
      expect(new Set(ids).size).toBe(12)
      expect(got.length).toBe(12)
      const log = await call(srv.url, 'GET', `/api/v1/admin/webhooks/${hook.body.id}/deliveries`, { token: ADMIN })
      const instances = new Set(
        log.body.deliveries.flatMap((d: { log: { instance: string }[] }) => d.log.map((a) => a.instance)),
      )
      expect(log.body.deliveries.every((d: { attempts: number }) => d.attempts === 1)).toBe(true)
      expect(instances.size).toBeGreaterThanOrEqual(1)
    } finally {
      await second.close()
    }
  })
})
