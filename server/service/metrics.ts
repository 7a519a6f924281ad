// Prometheus metrics (prom-client, one registry per server instance). Counters move with events on the bus and with
// each response; gauges that need the database (devices by class and status, open violations by app) are computed at
// scrape time from the compliance summary, cached briefly so several scrapers cost one query.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { Db } from '../storage/db.js'
import { STATUSES } from '../storage/schema.js'
import type { BusEvent } from './events.js'
import type { QueryService } from './queries.js'

type Summary = Awaited<ReturnType<QueryService['compliance']>>

/** Device-sent app ids become label values: past this many distinct ones they are counted as "other". */
const MAX_APPS = 200

export class Metrics {
  readonly registry = new Registry()
  private readonly reports: Counter<'result'>
  private readonly findings: Counter<'app' | 'status'>
  private readonly pushLatency: Histogram
  private readonly http: Histogram<'route' | 'method' | 'status'>
  readonly webhookDeliveries: Counter<'event' | 'result'>
  private readonly httpChildren = new Map<string, { observe: (v: number) => void }>()
  private readonly apps = new Set<string>()
  private cache: { at: number; summary: Summary; violations: { app: string; n: number }[] } | undefined
  private loading: Promise<NonNullable<Metrics['cache']>> | undefined

  constructor(
    private readonly db: Db,
    private readonly queries: QueryService,
    waiters: () => number,
    eventsDropped: () => number,
    private readonly cacheMs = 5000,
  ) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'interdict_' })
    this.reports = new Counter({
      name: 'interdict_reports_ingested_total',
      help: 'Reports accepted from devices (stored = new, duplicate = a retry of one already stored)',
      labelNames: ['result'],
      registers,
    })
    this.findings = new Counter({
      name: 'interdict_findings_total',
      help: 'Findings in stored reports, by app and finding status (open, remediated, exempted)',
      labelNames: ['app', 'status'],
      registers,
    })
    const snapshot = () => this.snapshot()
    new Gauge({
      name: 'interdict_devices',
      help: 'Devices by class and compliance status (revoked devices excluded)',
      labelNames: ['class', 'status'],
      registers,
      async collect() {
        const { summary } = await snapshot()
        this.reset()
        for (const c of summary.classes) for (const s of STATUSES) this.set({ class: c.class, status: s }, c[s])
      },
    })
    new Gauge({
      name: 'interdict_open_violations',
      help: 'Devices with an open (not remediated, not exempted) finding, by app',
      labelNames: ['app'],
      registers,
      async collect() {
        const { violations } = await snapshot()
        this.reset()
        for (const v of violations) this.set({ app: v.app }, v.n)
      },
    })
    this.pushLatency = new Histogram({
      name: 'interdict_push_latency_seconds',
      help: 'Time from a bundle being issued (policy push, exemption) to each waiting long-poll being answered with it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    })
    new Gauge({
      name: 'interdict_longpoll_waiters',
      help: 'Agents currently waiting in a policy long-poll on this instance',
      registers,
      collect() {
        this.set(waiters())
      },
    })
    this.http = new Histogram({
      name: 'interdict_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern, method and status (long-polls include their wait)',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 60],
      registers,
    })
    this.webhookDeliveries = new Counter({
      name: 'interdict_webhook_deliveries_total',
      help: 'Webhook delivery attempts by event and outcome (delivered, retry, failed)',
      labelNames: ['event', 'result'],
      registers,
    })
    new Gauge({
      name: 'interdict_events_dropped',
      help: 'Event-stream lines dropped because the events file reader fell behind',
      registers,
      collect() {
        this.set(eventsDropped())
      },
    })
  }

  private appLabel(app: string) {
    if (this.apps.has(app)) return app
    if (this.apps.size >= MAX_APPS) return 'other'
    this.apps.add(app)
    return app
  }

  onEvent(e: BusEvent) {
    if (e.type !== 'report') return
    this.reports.inc({ result: e.duplicate ? 'duplicate' : 'stored' })
    const status = e.findingStatus
    if (e.duplicate || e.body.findings.length === 0 || !status) return
    e.body.findings.forEach((f, i) => {
      this.findings.inc({ app: this.appLabel(f.appId), status: status[i] ?? 'open' })
    })
  }

  observeRequest(route: string, method: string, status: number, ms: number) {
    const key = `${method} ${status} ${route}`
    let child = this.httpChildren.get(key)
    if (!child) {
      child = this.http.labels({ route, method, status: String(status) })
      this.httpChildren.set(key, child)
    }
    child.observe(ms / 1000)
  }

  observePush(seconds: number) {
    this.pushLatency.observe(seconds)
  }

  private snapshot() {
    const now = Date.now()
    if (this.cache && now - this.cache.at < this.cacheMs) return Promise.resolve(this.cache)
    this.loading ??= (async () => {
      const summary = await this.queries.compliance()
      const rows = await this.db
        .selectFrom('violations')
        .select('app_id')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('closed_at', 'is', null)
        .groupBy('app_id')
        .execute()
      this.cache = { at: Date.now(), summary, violations: rows.map((r) => ({ app: r.app_id, n: Number(r.n) })) }
      return this.cache
    })().finally(() => {
      this.loading = undefined
    })
    return this.loading
  }

  metrics() {
    return this.registry.metrics()
  }
}
