// `interdict-agent run`: the long-running agent. It enforces the last good bundle from the moment it starts (even
// with the server unreachable), watches new processes, runs a full scan on a schedule and on every policy change,
// and delivers reports and heartbeats through the on-disk outbox.
//
//   policy long-poll ──accepted──▶ compile matcher ──▶ watcher.setPolicy + re-evaluate processes + full scan
//   watcher (200 ms) ──finding──▶ enforce at once ──▶ batched report ──▶ outbox ──▶ POST (ordered, backoff)
//   cron: full scan (15 min), heartbeat (server's interval, 60 s), outbox flush (10 s)
import { randomInt } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { type ScheduledTask, schedule } from 'node-cron'
import pino, { type Logger } from 'pino'
import { compileMatcher, type Finding, type Matcher } from '../policies/match.js'
import type { NetworkBlockOptions } from './actions/block-network.js'
import type { ActionResult } from './actions/types.js'
import { collectContext } from './collectors/context.js'
import { compactHeap } from './memory.js'
import { createFileInspector } from './collectors/file-inspector.js'
import { collectorsFor } from './collectors/index.js'
import type { Collector, FileInspector, Os, ProcessRow } from './collectors/types.js'
import { type ScanResult, runScan } from './scan.js'
import { Backoff } from './sync/backoff.js'
import { type DeliveryState, PolicySync, sendItem } from './sync/client.js'
import { type AgentConfig, loadConfig } from './sync/config.js'
import { actionable, defaultEnforcer, type Enforcer } from './sync/enforcer.js'
import { errorMessage, writeFileAtomic } from './sync/fsutil.js'
import { createClient } from './sync/http.js'
import { ClockSkew, SKEW_WARN_SEC } from './sync/clock.js'
import { NetworkBlockSync } from './sync/network-block.js'
import { type Outbox, Outbox as OutboxClass, type OutboxKind, type OutboxLimits } from './sync/outbox.js'
import { statePaths } from './sync/paths.js'
import { type ActiveBundle, type OfferResult, PolicyStore, type Rejection } from './sync/policy-store.js'
import {
  buildReports,
  ChangeTracker,
  findingKey,
  HEARTBEAT_ROUTE,
  type HeartbeatBody,
  REPORTS_ROUTE,
  type Scalars,
  scanInventory,
  toScalars,
} from './sync/reports.js'
import { AGENT_VERSION } from './version.js'
import { ProcessWatcher, type WatcherOptions } from './watcher.js'

export interface DaemonOptions {
  stateDir: string
  logger?: Logger
  /** Enforcement (default: the actions module). */
  enforce?: Enforcer
  /** Collectors of the full scan (default: every collector for this OS). */
  collectors?: Collector[]
  /** Cron expressions (node-cron, 6 fields allowed), matched in UTC. Defaults spread the fleet with a random offset. */
  scanCron?: string
  heartbeatCron?: string
  flushCron?: string
  /** Long-poll seconds (server max 60). */
  waitSec?: number
  watcher?: Partial<Omit<WatcherOptions, 'onFindings'>>
  /** Run a full scan at start (default true). */
  scanOnStart?: boolean
  /** Periodic full summary report even when nothing changed. Default 6 h. */
  summaryMs?: number
  /** Actions on an installed item (not a process) are retried at most this often under one bundle. Default 6 h. */
  retryMs?: number
  /** Watcher reports are batched this long so a relaunch loop makes one report a second, not hundreds. */
  reportBatchMs?: number
  /** Wall clock (ms) for report times, the outbox, summaries, backoff and bundle expiry; tests simulate a day or a
   * skewed clock with it. Default Date.now. */
  clock?: () => number
  /** Outbox bounds (default 5,000 items / 50 MB). */
  outbox?: Partial<OutboxLimits>
  /** Hosts-file path, firewall backend and command runner for block-network (tests point these at fixtures). */
  network?: Omit<NetworkBlockOptions, 'os' | 'stale'>
}

/** The longest the start-up scan waits for the first policy check (a server that does not answer). */
const STARTUP_SYNC_WAIT_MS = 3000

/** A cron expression for "every n seconds" with a fixed random offset so a fleet does not fire in lockstep (pure). */
export function everySeconds(n: number, offset: number): string {
  if (n < 60 && 60 % n === 0) {
    const secs: number[] = []
    for (let s = offset % n; s < 60; s += n) secs.push(s)
    return `${secs.join(',')} * * * * *`
  }
  const mins = Math.max(1, Math.round(n / 60))
  const list: number[] = []
  if (60 % mins === 0) for (let m = offset % mins; m < 60; m += mins) list.push(m)
  else list.push(offset % 60)
  return `${offset % 60} ${list.join(',')} * * * *`
}

export interface DaemonStatus {
  pid: number
  startedAt: string
  updatedAt: string
  agentVersion: string
  bundleVersion?: number
  bundleExpiresAt?: string
  lastSyncAt?: string
  syncError?: string
  lastScan?: { at: string; ms: number; rows: number; findings: number; errors: number }
  lastReportAt?: string
  outbox: { items: number; bytes: number; inMemory: number }
  health: Scalars
}

export class Daemon {
  readonly log: Logger
  readonly paths: ReturnType<typeof statePaths>
  private config!: AgentConfig
  private store!: PolicyStore
  outbox!: Outbox
  private sync!: PolicySync
  readonly watcher: ProcessWatcher
  private enforce: Enforcer | undefined
  private matcher: Matcher | undefined
  private files: FileInspector | undefined
  private readonly tracker: ChangeTracker
  private readonly delivery: DeliveryState = {}
  private readonly flushBackoff = new Backoff()
  private readonly now: () => number
  readonly skew = new ClockSkew()
  private readonly tasks: ScheduledTask[] = []
  private readonly inflight = new Set<string>()
  private readonly pending = new Set<Promise<void>>()
  private readonly attempted = new Map<string, { version: number; at: number }>()
  private readonly retryMs: number
  private batch: { findings: Finding[]; actions: ActionResult[]; timer?: NodeJS.Timeout } = {
    findings: [],
    actions: [],
  }
  private scanning: Promise<void> | undefined
  private rescan = false
  private stopped = false
  private readonly os: Os
  private readonly startedAt = new Date().toISOString()
  private lastScan: DaemonStatus['lastScan']
  private lastReportAt: string | undefined
  private statusError: string | undefined
  private pendingRejection: Rejection | undefined
  private networkError: string | undefined
  private readonly network: NetworkBlockSync
  private client!: ReturnType<typeof createClient>

  constructor(readonly opts: DaemonOptions) {
    this.log = opts.logger ?? pino({ level: 'silent' })
    this.paths = statePaths(opts.stateDir)
    this.os = process.platform as Os
    this.tracker = new ChangeTracker(opts.summaryMs)
    this.retryMs = opts.retryMs ?? 6 * 3600_000
    this.now = opts.clock ?? Date.now
    this.network = new NetworkBlockSync(this.paths.networkBlock, this.os, opts.network)
    this.watcher = new ProcessWatcher({
      ...opts.watcher,
      onFindings: (f, row) => this.onWatcherFindings(f, row),
      onError: (err) => this.log.warn({ err: errorMessage(err) }, 'watcher tick failed'),
    })
    if (opts.enforce) this.enforce = opts.enforce
  }

  get bundle(): ActiveBundle | undefined {
    return this.store?.current
  }

  /** Load config, last good bundle and outbox; start enforcing, watching, syncing and the schedules. */
  async start() {
    this.config = await loadConfig(this.opts.stateDir)
    const cfg = this.config
    this.client = createClient({
      server: cfg.server,
      token: cfg.deviceToken,
      ...(cfg.caFile ? { caFile: cfg.caFile } : {}),
    })
    // Every server answer carries its clock in `Date`: measure the skew on all of them (long-polls included).
    this.client.interceptors.response.use((res) => {
      this.skew.observe(res.headers.date, this.now())
      return res
    })
    this.outbox = await OutboxClass.open(this.paths.outbox, { ...this.opts.outbox, clock: this.now })
    if (this.outbox.diskError) this.log.error({ err: this.outbox.diskError }, 'outbox not writable')
    this.store = new PolicyStore(
      this.opts.stateDir,
      { publicKeyPem: cfg.policyKey, class: cfg.class },
      () => new Date(this.now()),
    )
    const last = await this.store.load()
    if (last) {
      this.log.info({ version: last.payload.version, expired: last.expired }, 'enforcing last good bundle')
      if (last.expired) this.log.warn({ expiresAt: last.payload.expiresAt }, 'last good bundle expired; still enforced')
      this.applyBundle(last)
      void this.syncNetwork()
    } else if (this.store.loadProblem) {
      this.log.error({ err: this.store.loadProblem }, 'no usable policy bundle on disk')
    }
    await this.watcher.start()
    this.sync = new PolicySync({
      client: this.client,
      store: this.store,
      waitSec: this.opts.waitSec ?? 55,
      onResult: (r) => this.onPolicy(r),
      onError: (msg) => this.log.info({ err: msg }, 'policy sync failed; retrying with backoff'),
    })
    this.sync.start()
    const off = randomInt(0, 3600)
    const hb = everySeconds(cfg.heartbeatIntervalSec ?? 60, off)
    const cron = (expr: string, name: string, fn: () => Promise<unknown>) => {
      const task = schedule(
        expr,
        async () => {
          try {
            await fn()
          } catch (err) {
            this.log.warn({ err: errorMessage(err), task: name }, 'scheduled task failed')
          }
        },
        // UTC: every schedule here is a period with an offset, the same in any zone, and in the binaries UTC matching
        // needs no ICU data (agent/utc-date-format.ts: ~8 MB less resident memory).
        { name, noOverlap: true, timezone: 'Etc/UTC' },
      )
      this.tasks.push(task)
    }
    cron(this.opts.scanCron ?? everySeconds(15 * 60, off), 'full-scan', () => this.fullScan('schedule'))
    cron(this.opts.heartbeatCron ?? hb, 'heartbeat', () => this.heartbeat())
    cron(this.opts.flushCron ?? everySeconds(10, off), 'outbox-flush', () => this.flush())
    if (this.opts.scanOnStart !== false && this.matcher) void this.startupScan(this.sync)
    void this.heartbeat()
    await this.writeStatus()
  }

  /** Graceful stop: schedules, watcher and long-poll end; pending watcher reports are queued; one last flush. */
  async stop() {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.tasks) await t.destroy()
    this.watcher.stop()
    await this.sync?.stop()
    await this.scanning?.catch(() => {})
    // A kill verifies death for up to a few seconds: wait for it (bounded), so its finding is queued.
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, 8000).unref())])
    await this.flushBatch()
    await Promise.race([this.flush(true), new Promise((r) => setTimeout(r, 3000).unref())])
    await this.writeStatus()
  }

  // ---- policy ----

  private applyBundle(b: ActiveBundle) {
    this.matcher = compileMatcher(b.payload.apps, this.os, {
      deviceId: this.config.deviceId,
      exemptions: b.payload.exemptions,
    })
    this.files = createFileInspector(this.matcher.needs)
    this.watcher.setPolicy(this.matcher, this.files)
  }

  /** Hosts block and firewall rules follow the bundle: added when asked for, removed when no longer asked for. */
  private async syncNetwork() {
    try {
      const r = await this.network.sync(this.store.current?.payload)
      if (!r) return
      this.networkError = r.ok ? undefined : r.errors.join('; ')
      const fields = { domains: r.domains.length, cidrs: r.cidrs.length, firewall: r.firewall, hosts: r.hostsPath }
      if (r.ok) this.log.info(fields, 'network block updated to the policy')
      else this.log.error({ ...fields, err: this.networkError }, 'network block failed')
    } catch (err) {
      this.networkError = errorMessage(err)
      this.log.error({ err: this.networkError }, 'network block failed')
    }
  }

  private async onPolicy(r: OfferResult) {
    if (r.status === 'unchanged') return
    if (r.status === 'rejected') {
      this.log.warn(
        { reason: r.rejection.reason, err: r.rejection.message },
        'policy bundle rejected; keeping last good',
      )
      this.pendingRejection = r.rejection
      await this.enqueue('event', {
        bundleVersion: this.store.current?.payload.version ?? 0,
        scannedAt: this.serverDated(r.rejection.at),
        findings: [],
        actions: [],
        inventory: toScalars({
          event: 'policy-rejected',
          'rejected.reason': r.rejection.reason,
          'rejected.message': r.rejection.message,
          'rejected.version': r.rejection.version,
          'rejected.class': r.rejection.class,
          'active.version': this.store.current?.payload.version ?? 0,
        }),
      })
      void this.flush()
      return
    }
    this.log.info({ version: r.bundle.payload.version, previous: r.previousVersion }, 'policy bundle accepted')
    this.pendingRejection = undefined
    this.applyBundle(r.bundle)
    if (this.store.persistError) this.log.error({ err: this.store.persistError }, 'state dir not writable')
    await this.syncNetwork()
    // Everything already running and installed is re-evaluated against the new rules at once, and reported afresh.
    this.tracker.reset()
    await this.fullScan('policy')
    void this.heartbeat()
  }

  // ---- enforcement ----

  private onWatcherFindings(findings: Finding[], row: ProcessRow) {
    this.log.info({ pid: row.pid, exe: row.exe, apps: findings.map((f) => f.appId) }, 'banned process started')
    const fresh = this.tracker.add(findings)
    const p = this.enforceNow(findings).then((actions) => {
      if (fresh.length === 0 && actions.length === 0) return
      this.batch.findings.push(...fresh)
      this.batch.actions.push(...actions)
      if (!this.batch.timer) {
        this.batch.timer = setTimeout(() => void this.flushBatch(), this.opts.reportBatchMs ?? 1000)
      }
    })
    // Tracked so a shutdown waits for the action results and reports them instead of losing the finding.
    this.pending.add(p)
    void p.finally(() => this.pending.delete(p))
  }

  /** Enforce the findings' actions (never for report-only ones); one enforcement per subject at a time. */
  async enforceNow(findings: readonly Finding[]): Promise<ActionResult[]> {
    const bundle = this.store.current
    if (!bundle) return []
    const now = this.now()
    const version = bundle.payload.version
    const todo = actionable(findings).filter((f) => {
      const k = findingKey(f)
      if (this.inflight.has(k)) return false
      // Installed items (packages, files, desktop entries) are acted on once per bundle version and then at most
      // every retry period: a failing uninstall must not run, and be reported, at every 15-minute scan.
      if (f.row.kind === 'process') return true
      const prev = this.attempted.get(k)
      return !prev || prev.version !== version || now - prev.at > this.retryMs
    })
    if (todo.length === 0) return []
    for (const f of todo) {
      this.inflight.add(findingKey(f))
      if (f.row.kind !== 'process') this.attempted.set(findingKey(f), { version, at: now })
    }
    if (this.attempted.size > 10_000) this.attempted.clear()
    try {
      this.enforce ??= await defaultEnforcer()
      const results = await this.enforce(todo, { stateDir: this.opts.stateDir, os: this.os, bundle: bundle.payload })
      for (const r of results) {
        const level = r.ok ? 'info' : 'warn'
        this.log[level]({ action: r.action, subject: r.subject, status: r.status, detail: r.detail }, 'action')
      }
      // A killed process is remediated: the next scan must not count it as still open.
      this.tracker.resolve(
        results.filter((r) => r.action === 'kill' && r.ok && r.appId).map((r) => `${r.appId}|${r.subject}`),
      )
      return results
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'enforcement failed')
      return []
    } finally {
      for (const f of todo) this.inflight.delete(findingKey(f))
    }
  }

  private async flushBatch() {
    const { findings, actions, timer } = this.batch
    if (timer) clearTimeout(timer)
    this.batch = { findings: [], actions: [] }
    if (findings.length === 0 && actions.length === 0) return
    await this.report(findings, actions, this.isoNow(), { source: 'watcher' }, 'finding')
  }

  // ---- full scan ----

  /**
   * The start-up scan of the last good bundle runs once the first policy check is over (at most STARTUP_SYNC_WAIT_MS;
   * the watcher enforces meanwhile): a newer bundle scans anyway, and the two at once would double the memory peak.
   */
  private async startupScan(sync: PolicySync) {
    await Promise.race([sync.firstRound, new Promise((r) => setTimeout(r, STARTUP_SYNC_WAIT_MS).unref())])
    if (this.stopped || this.scanning || this.lastScan) return
    compactHeap()
    await this.fullScan('start')
  }

  /** Run a full scan now (joins a running one and schedules one more after it, so a policy change is never lost). */
  fullScan(reason: string): Promise<void> {
    if (this.scanning) {
      this.rescan = true
      return this.scanning
    }
    this.scanning = (async () => {
      do {
        this.rescan = false
        await this.scanOnce(reason)
      } while (this.rescan && !this.stopped)
    })().finally(() => {
      this.scanning = undefined
      compactHeap()
    })
    return this.scanning
  }

  private async scanOnce(reason: string) {
    const matcher = this.matcher
    const bundle = this.store.current
    if (!matcher || !bundle) return
    const ctx = await collectContext(matcher)
    if (this.files) ctx.files = this.files
    const startedAt = this.isoNow()
    let result: ScanResult
    try {
      result = await runScan(this.opts.collectors ?? collectorsFor(this.os), ctx, matcher)
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'full scan failed')
      return
    }
    const actions = await this.enforceNow(result.findings)
    const errors = result.collectors.filter((c) => c.error).length
    this.lastScan = {
      at: startedAt,
      ms: Math.round(result.ms),
      rows: result.rows.length,
      findings: result.findings.length,
      errors,
    }
    this.log.info({ reason, ...this.lastScan, actions: actions.length }, 'full scan')
    const change = this.tracker.scan(result.findings, actions.length > 0, this.now())
    if (change.report) {
      const kind: OutboxKind = result.findings.length > 0 || actions.length > 0 ? 'finding' : 'report'
      await this.report(
        result.findings,
        actions,
        startedAt,
        scanInventory(result.collectors, {
          source: 'scan',
          reason,
          'scan.ms': Math.round(result.ms),
          'findings.new': change.added.length,
          'findings.resolved': change.resolved.length,
        }),
        kind,
      )
    }
    // The bundle may have changed during the scan: its findings were for the old rules, so scan again.
    if (this.store.current !== bundle) this.rescan = true
    await this.writeStatus()
  }

  // ---- reports, heartbeat, delivery ----

  private async report(
    findings: readonly Finding[],
    actions: readonly ActionResult[],
    scannedAt: string,
    inventory: Record<string, unknown>,
    kind: OutboxKind,
  ) {
    const drops = this.outbox.takeDrops()
    const inv = { ...inventory }
    if (drops) for (const [k, v] of Object.entries(drops)) if (v) inv[`dropped.${k}`] = v
    if (this.skew.warning) inv['clock.skewSec'] = this.skew.sec
    const bodies = buildReports({
      bundleVersion: this.store.current?.payload.version ?? 0,
      scannedAt: this.serverDated(scannedAt),
      findings,
      actions,
      inventory: inv,
    })
    for (const body of bodies) await this.enqueue(kind, body)
    this.lastReportAt = new Date(this.now()).toISOString()
    void this.flush()
  }

  private isoNow(): string {
    return new Date(this.now()).toISOString()
  }

  /**
   * A time on this device's clock, as the report's `scannedAt`. Within the tolerated ±1 day it is sent as is; past
   * it, it is moved onto the server's clock (last measured skew): otherwise the server refuses reports from the
   * future and files the others days off.
   */
  private serverDated(iso: string): string {
    const off = this.skew.sec
    if (off === undefined || Math.abs(off) <= SKEW_WARN_SEC) return iso
    return new Date(Date.parse(iso) - off * 1000).toISOString()
  }

  private async enqueue(kind: OutboxKind, body: Record<string, unknown>) {
    await this.outbox.enqueue(kind, REPORTS_ROUTE, body, { idField: 'reportId' })
    if (this.outbox.diskError) this.log.error({ err: this.outbox.diskError }, 'outbox')
  }

  health(): Scalars {
    const b = this.store?.current
    const box = this.outbox?.size
    const drops = this.outbox?.dropRecord
    const mem = process.memoryUsage()
    const h: Record<string, unknown> = {
      status: this.healthStatus(),
      class: this.config?.class,
      'bundle.version': b?.payload.version ?? 0,
      'bundle.expiresAt': b?.payload.expiresAt,
      'bundle.expired': b ? this.store.expiredNow() : undefined,
      'bundle.problem': this.store?.loadProblem,
      'policy.rejected': this.pendingRejection
        ? `${this.pendingRejection.reason}: ${this.pendingRejection.message}`
        : undefined,
      'sync.lastAt': this.sync?.status.lastSyncAt,
      'sync.error': this.sync?.status.lastError,
      'delivery.error': this.delivery.lastError,
      'outbox.items': box?.items,
      'outbox.bytes': box?.bytes,
      'outbox.inMemory': box?.inMemory || undefined,
      'outbox.error': this.outbox?.diskError,
      'outbox.dropped': drops
        ? drops.total.heartbeat + drops.total.report + drops.total.event + drops.total.finding
        : undefined,
      'outbox.dead': drops?.dead || undefined,
      'state.error': this.statusError ?? this.store?.persistError,
      clockSkewSec: this.skew.sec,
      'clock.warning': this.skew.warning,
      'network.error': this.networkError,
      'scan.lastAt': this.lastScan?.at,
      'scan.ms': this.lastScan?.ms,
      'scan.findings': this.lastScan?.findings,
      'scan.collectorErrors': this.lastScan?.errors || undefined,
      'watcher.ticks': this.watcher.stats.ticks,
      'watcher.matched': this.watcher.stats.matched,
      'agent.rssMB': Math.round(mem.rss / 1048576),
      'agent.uptimeSec': Math.round(process.uptime()),
    }
    // Heartbeats have a 64 KB body limit on the server: keep every value short.
    return toScalars(h, 48, 512)
  }

  private healthStatus(): string {
    const b = this.store?.current
    if (!b) return 'error: no policy'
    if (this.outbox?.diskError || this.statusError || this.store.persistError) return 'degraded: state dir not writable'
    const clock = this.skew.warning
    if (clock) return `warning: ${clock}`
    if (this.store.expiredNow()) return 'warning: bundle expired (still enforced)'
    if (this.pendingRejection) return 'warning: policy rejected'
    if (this.sync?.status.lastError) return 'warning: server unreachable'
    return 'ok'
  }

  async heartbeat() {
    const body: HeartbeatBody = {
      bundleVersion: this.store?.current?.payload.version ?? 0,
      agentVersion: AGENT_VERSION,
      health: this.health(),
    }
    // A bundle accepted while the state dir was not writable is written once it is again.
    await this.store?.retryPersist()
    // Only the latest heartbeat is worth sending after an outage: older ones are replaced, not piled up.
    await this.outbox.enqueue('heartbeat', HEARTBEAT_ROUTE, body, { replace: true })
    await this.writeStatus()
    await this.flush()
  }

  /** Deliver the outbox in order; after a failure wait out the backoff (unless forced, e.g. at shutdown). */
  async flush(force = false) {
    if (!this.outbox) return
    if (!force && !this.flushBackoff.ready(this.now())) return
    const r = await this.outbox.flush((item) => sendItem(this.client, item, this.delivery))
    if (r.stoppedAt) {
      const delay = this.flushBackoff.fail(this.now())
      this.log.info({ err: this.delivery.lastError, retryInMs: delay, queued: r.remaining }, 'delivery paused')
      // The cron flush runs every 10 s; a shorter backoff is honoured by its own timer.
      if (delay < 10_000 && !this.stopped) setTimeout(() => void this.flush(), delay + 10).unref()
    } else {
      this.flushBackoff.succeed()
    }
  }

  status(): DaemonStatus {
    const b = this.store?.current
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      agentVersion: AGENT_VERSION,
      ...(b ? { bundleVersion: b.payload.version, bundleExpiresAt: b.payload.expiresAt } : {}),
      ...(this.sync?.status.lastSyncAt ? { lastSyncAt: this.sync.status.lastSyncAt } : {}),
      ...(this.sync?.status.lastError ? { syncError: this.sync.status.lastError } : {}),
      ...(this.lastScan ? { lastScan: this.lastScan } : {}),
      ...(this.lastReportAt ? { lastReportAt: this.lastReportAt } : {}),
      outbox: this.outbox?.size ?? { items: 0, bytes: 0, inMemory: 0 },
      health: this.health(),
    }
  }

  /** status.json for `interdict-agent status` (best effort: a read-only state dir must not stop the agent). */
  async writeStatus() {
    try {
      await writeFileAtomic(this.paths.status, `${JSON.stringify(this.status(), null, 2)}\n`, 0o600)
      this.statusError = undefined
    } catch (err) {
      const first = this.statusError === undefined
      this.statusError = `cannot write ${this.paths.status}: ${errorMessage(err)}`
      // Logged once per outage (status is rewritten every minute); health carries it meanwhile.
      if (first) this.log.error({ err: this.statusError }, 'state dir not writable; enforcing from memory')
    }
  }

  /** Last-resort status write from a signal handler. */
  writeStatusSync() {
    try {
      writeFileSync(this.paths.status, JSON.stringify(this.status()), { mode: 0o600 })
    } catch {}
  }
}
