// Reliability: two server processes on one PostgreSQL behind a round-robin TCP proxy (written here, node:net,
// loopback only). (1) Long-polling agents spread over both instances all get a push made through either instance
// (PostgreSQL LISTEN/NOTIFY). (2) `kill -9` of one instance while simulated agents send reports through the proxy;
// agents resend anything not acknowledged with the same reportId (as the real outbox does): no acknowledged report
// lost, none duplicated, read back from the database.
//
// Runs when INTERDICT_TEST_PG is set. Fast variant: 100 agents, one kill. INTERDICT_RELIABILITY_FULL=1: 200 agents,
// three kills (alternating instances, each restarted).
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { ADMIN, enrollDevices, finding, makeDatabase, PG_URL, POLICY_2, POLICY_YAML } from '../server/helpers.js'
import { type ServerProcess, spawnServer } from '../server/process.js'

const FULL = process.env.INTERDICT_RELIABILITY_FULL === '1'
const AGENTS = FULL ? 200 : 100
const KILLS = FULL ? 3 : 1
const WAITERS = 40
const FINDINGS_PER_REPORT = 2

/** Round-robin TCP proxy: each new connection goes to the next upstream; one that refuses is skipped. */
class RoundRobinProxy {
  readonly server: net.Server
  upstreams: { url: string; port: number }[] = []
  readonly connections = new Map<number, number>()
  private next = 0
  private readonly sockets = new Set<net.Socket>()
  port = 0

  constructor() {
    this.server = net.createServer((client) => this.accept(client))
  }

  async start() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    this.port = (this.server.address() as net.AddressInfo).port
    return `http://127.0.0.1:${this.port}`
  }

  set(urls: string[]) {
    this.upstreams = urls.map((url) => ({ url, port: Number(new URL(url).port) }))
  }

  private accept(client: net.Socket, tries = 0) {
    if (tries === 0) {
      this.sockets.add(client)
      client.once('close', () => this.sockets.delete(client))
      client.on('error', () => {})
      client.pause()
    }
    const up = this.upstreams[this.next++ % this.upstreams.length]!
    const upstream = net.connect(up.port, '127.0.0.1')
    this.sockets.add(upstream)
    upstream.once('close', () => this.sockets.delete(upstream))
    let connected = false
    upstream.once('connect', () => {
      connected = true
      this.connections.set(up.port, (this.connections.get(up.port) ?? 0) + 1)
      client.pipe(upstream).pipe(client)
      client.on('error', () => upstream.destroy())
      client.once('close', () => upstream.destroy())
      upstream.once('close', () => client.destroy())
      client.resume()
    })
    upstream.on('error', () => {
      // A dead instance: the first connect fails, so try the next one (as a load balancer's health check would).
      if (!connected && tries < this.upstreams.length) this.accept(client, tries + 1)
      else client.destroy()
    })
  }

  async stop() {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}

function request(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: string; agent?: http.Agent | false; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent: opts.agent ?? false,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
        timeout: 60_000,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end(opts.body)
  })
}

const cleanups: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

describe.skipIf(!PG_URL)('two server instances on one PostgreSQL behind a round-robin proxy', () => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  const inst: ServerProcess[] = []
  const proxy = new RoundRobinProxy()
  let via = ''
  const start = () =>
    spawnServer(['--data-dir', db.dataDir, '--database-url', db.databaseUrl!], { INTERDICT_ADMIN_TOKEN: ADMIN })

  it('starts two instances and the proxy', { timeout: 60_000 }, async () => {
    db = await makeDatabase('postgres')
    cleanups.push(db.drop)
    inst.push(await start())
    // The second shares the data dir only for the signing key file (agents pin one key).
    inst.push(await start())
    cleanups.push(async () => Promise.all(inst.map((s) => s.stop('SIGKILL'))))
    via = await proxy.start()
    cleanups.push(() => proxy.stop())
    proxy.set(inst.map((s) => s.url))
  })

  it(`a push through either instance reaches ${WAITERS} long-polling agents spread over both`, async () => {
    const { devices } = await enrollDevices(via, 'military', 10, 'rr')
    for (const [round, pushVia] of [
      [1, inst[0]!.url],
      [2, inst[1]!.url],
    ] as const) {
      const cur = await request(via, 'GET', '/api/v1/policy', { token: devices[0]!.deviceToken })
      const etag = String(cur.headers.etag)
      const before = new Map(proxy.connections)
      // One connection per waiting agent, as in the field: the proxy spreads them over both instances.
      const waits = Array.from({ length: WAITERS }, (_, i) =>
        request(via, 'GET', '/api/v1/policy?wait=30', {
          token: devices[i % devices.length]!.deviceToken,
          headers: { 'if-none-match': etag },
        }).then((r) => ({ ...r, at: Date.now() })),
      )
      await new Promise((r) => setTimeout(r, 1000)) // let them park
      const spread = inst.map((s) => {
        const port = Number(new URL(s.url).port)
        return (proxy.connections.get(port) ?? 0) - (before.get(port) ?? 0)
      })
      expect(Math.min(...spread), `waiters per instance ${spread}`).toBeGreaterThanOrEqual(WAITERS / 2 - 2)
      const t0 = Date.now()
      const push = await request(pushVia, 'POST', '/api/v1/admin/policies', {
        token: ADMIN,
        body: JSON.stringify({ policies: round === 1 ? [POLICY_YAML] : [POLICY_YAML, POLICY_2] }),
      })
      expect(push.status, push.body).toBe(201)
      const res = await Promise.all(waits)
      const worst = Math.max(...res.map((r) => r.at)) - t0
      expect(res.map((r) => r.status)).toEqual(res.map(() => 200))
      const etags = new Set(res.map((r) => r.headers.etag))
      expect(etags.size).toBe(1)
      expect([...etags][0]).not.toBe(etag)
      expect(worst).toBeLessThan(2000)
      console.log(
        `[multi] push ${round} via instance ${round}: ${WAITERS}/${WAITERS} waiters (${spread.join(' + ')} per ` +
          `instance) answered within ${worst} ms`,
      )
    }
  })

  it(`kill -9 of one instance while ${AGENTS} agents report through the proxy: nothing lost, nothing duplicated`, {
    timeout: FULL ? 240_000 : 90_000,
  }, async () => {
    const { devices } = await enrollDevices(via, 'standard', AGENTS, 'rrkill')
    const acked = new Set<string>()
    let resent = 0
    let duplicates = 0
    let errors = 0
    let stop = false
    const body = (id: string) =>
      JSON.stringify({
        reportId: id,
        bundleVersion: 1,
        scannedAt: new Date().toISOString(),
        findings: Array.from({ length: FINDINGS_PER_REPORT }, (_, i) => finding(`f${i}`)),
        actions: [],
        inventory: { processes: 300 },
      })
    // Each agent: keep-alive connection (pinned to one instance by the proxy); a report is resent with the same
    // id until it gets a 202, with a short backoff, exactly like the outbox.
    const agents = devices.map(async (d) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      try {
        while (!stop) {
          const id = randomUUID()
          for (let attempt = 0; ; attempt++) {
            if (attempt > 0) resent++
            try {
              const r = await request(via, 'POST', '/api/v1/reports', { token: d.deviceToken, body: body(id), agent })
              if (r.status === 202) {
                if ((JSON.parse(r.body) as { duplicate?: boolean }).duplicate) duplicates++
                acked.add(id)
                break
              }
              if (r.status < 500) throw new Error(`report ${id}: unexpected ${r.status} ${r.body}`)
              errors++
            } catch (err) {
              if ((err as Error).message.startsWith('report ')) throw err
              errors++
            }
            await new Promise((r) => setTimeout(r, 20 + Math.random() * 80))
          }
        }
      } finally {
        agent.destroy()
      }
    })
    const faults: string[] = []
    for (let k = 0; k < KILLS; k++) {
      const target = acked.size + 400
      const t0 = Date.now()
      while (acked.size < target && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10))
      expect(acked.size, 'reports flowing before the kill').toBeGreaterThanOrEqual(target)
      const victim = k % 2 === 1 ? 0 : 1
      inst[victim]!.child.kill('SIGKILL')
      await inst[victim]!.stop('SIGKILL')
      faults.push(`kill -9 instance ${victim + 1} at ${acked.size} acked`)
      // Reports keep flowing through the survivor for a while.
      const mark = acked.size
      const t1 = Date.now()
      while (acked.size < mark + 300 && Date.now() - t1 < 20_000) await new Promise((r) => setTimeout(r, 10))
      expect(acked.size, 'reports flowing through the survivor').toBeGreaterThanOrEqual(mark + 300)
      if (k < KILLS - 1 || FULL) {
        inst[victim] = await start()
        proxy.set(inst.map((s) => s.url))
      }
    }
    stop = true
    await Promise.all(agents)

    const c = new pg.Client({ connectionString: db.databaseUrl })
    await c.connect()
    try {
      const reports = await c.query('select report_id id, count(*)::int n from reports group by report_id')
      const findings = await c.query('select report_id id, count(*)::int n from findings group by report_id')
      const r = new Map<string, number>(reports.rows.map((x) => [x.id, x.n]))
      const f = new Map<string, number>(findings.rows.map((x) => [x.id, x.n]))
      const lost = [...acked].filter((id) => r.get(id) !== 1)
      const dupFindings = [...acked].filter((id) => f.get(id) !== FINDINGS_PER_REPORT)
      console.log(
        `[multi] ${AGENTS} agents via round-robin, faults injected: ${faults.join('; ')}; acked ${acked.size}, ` +
          `errors seen by agents ${errors}, resends ${resent} (answered duplicate ${duplicates}), lost ${lost.length}, ` +
          `duplicated ${dupFindings.length + [...r.values()].filter((n) => n > 1).length}`,
      )
      expect(lost).toEqual([])
      expect(dupFindings).toEqual([])
      expect([...r.values()].every((n) => n === 1)).toBe(true)
      // Every agent finished with its last report acknowledged: the database holds exactly what was acked.
      expect(r.size).toBe(acked.size)
      expect(errors).toBeGreaterThan(0) // the kill was felt
    } finally {
      await c.end()
    }
  })
})
