// Policy push and bundle distribution. A push validates the files (policies/load.ts), stores the new policy set and
// issues a new signed bundle only for the classes whose content changed (version + 1). The current bundle of every
// class is kept serialized in memory, so an unchanged poll (304) costs no query. Long-poll waiters are woken by a
// local push at once and by pushes on other instances through the storage notifier (PostgreSQL LISTEN/NOTIFY).
import { createHash } from 'node:crypto'
import { canonicalJson } from '../../policies/canonical.js'
import { compileBundle, policyClasses } from '../../policies/compile.js'
import { PolicyError, formatIssue, parsePolicy } from '../../policies/load.js'
import type { BundleApp, BundlePayload, Exemption, PolicyFile } from '../../policies/schema.js'
import { signBundle } from '../../policies/sign.js'
import type { PolicyPushBody } from '../protocol.js'
import type { Db, Notifier } from '../storage/db.js'
import type { Principal } from './auth.js'
import { writeAudit } from './audit.js'
import type { SigningKey } from './keys.js'
import { ApiError, badRequest, iso, parseJson } from './util.js'

export interface BundleEntry {
  class: string
  version: number
  etag: string
  /** The signed bundle as JSON text, ready to send. */
  body: string
  issuedAt: number
  expiresAt: number
  contentHash: string
  payload: BundlePayload
}

export interface PolicyOptions {
  ttlDays: number
  /** Re-issue (new version, same content) when less than this is left before expiry. */
  reissueBeforeMs: number
  /** How often to check for expiring bundles and missed cross-instance events. */
  maintenanceMs: number
  /** Exemptions kept outside the policy files (granted through the API), merged into each class's bundle. */
  exemptions?: (db: Db, cls: string, now: Date) => Promise<Exemption[]>
}

interface Waiter {
  etag: string
  resolve: (entry: BundleEntry | undefined) => void
}

export interface AppChange {
  app: string
  name: string
  actions?: { from: string[]; to: string[] }
  match?: boolean
  message?: boolean
  exemptions?: boolean
}

export interface ClassPlan {
  class: string
  created: boolean
  currentVersion: number | null
  newVersion: number | null
  added: string[]
  removed: string[]
  changed: AppChange[]
  exemptionsChanged: boolean
}

const contentHash = (p: Pick<BundlePayload, 'apps' | 'exemptions'>) =>
  createHash('sha256')
    .update(canonicalJson({ apps: p.apps, exemptions: p.exemptions }))
    .digest('hex')

export const etagOf = (cls: string, version: number) => `"${cls}.${version}"`

const appKey = (a: BundleApp) => `${a.policy}/${a.id}`

function diffApps(before: readonly BundleApp[], after: readonly BundleApp[]) {
  const b = new Map(before.map((a) => [appKey(a), a]))
  const a = new Map(after.map((x) => [appKey(x), x]))
  const added = [...a.keys()].filter((k) => !b.has(k)).sort()
  const removed = [...b.keys()].filter((k) => !a.has(k)).sort()
  const changed: AppChange[] = []
  for (const [k, next] of a) {
    const prev = b.get(k)
    if (!prev) continue
    const c: AppChange = { app: k, name: next.name }
    if (canonicalJson(prev.actions) !== canonicalJson(next.actions))
      c.actions = { from: prev.actions, to: next.actions }
    if (canonicalJson(prev.match) !== canonicalJson(next.match)) c.match = true
    if ((prev.message ?? '') !== (next.message ?? '')) c.message = true
    if (prev.name !== next.name) c.match = true
    if (Object.keys(c).length > 2) changed.push(c)
  }
  return { added, removed, changed }
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || /UNIQUE constraint/.test(e?.message ?? '')
}

/** Runs `fn` again when another instance wrote the same next bundle version concurrently (unique key). */
export async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (attempt < 4 && isUniqueViolation(err)) continue
      throw err
    }
  }
}

export class PolicyService {
  private current = new Map<string, BundleEntry>()
  private waiters = new Map<string, Set<Waiter>>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly db: Db,
    private readonly notifier: Notifier,
    private readonly key: SigningKey,
    private readonly opts: PolicyOptions,
    private readonly log: { warn: (o: object, m: string) => void; error: (o: object, m: string) => void },
  ) {}

  async start() {
    this.notifier.subscribe((e) => {
      if (e.type === 'bundle') this.refreshClass(e.class, e.version).catch((err) => this.log.error({ err }, 'refresh'))
      // After a listener reconnect we may have missed bundle events: reload everything.
      if (e.type === 'auth-flush') this.loadAll().catch((err) => this.log.error({ err }, 'reload bundles'))
    })
    await this.maintain()
    this.timer = setInterval(() => {
      this.maintain().catch((err) => this.log.error({ err }, 'bundle maintenance failed'))
    }, this.opts.maintenanceMs)
    this.timer.unref()
  }

  stop() {
    if (this.timer) clearInterval(this.timer)
    // Answer every waiter (304) so shutdown does not hang on open long-polls.
    for (const set of this.waiters.values()) for (const w of set) w.resolve(undefined)
    this.waiters.clear()
  }

  get(cls: string): BundleEntry | undefined {
    return this.current.get(cls)
  }

  waiterCount(): number {
    let n = 0
    for (const s of this.waiters.values()) n += s.size
    return n
  }

  /** Resolves with the next bundle of the class once its version moves past `etag`, or undefined after `ms`. */
  wait(cls: string, etag: string, ms: number, signal: { once(ev: 'close', fn: () => void): unknown }) {
    return new Promise<BundleEntry | undefined>((resolve) => {
      let set = this.waiters.get(cls)
      if (!set) {
        set = new Set()
        this.waiters.set(cls, set)
      }
      const waiter: Waiter = {
        etag,
        resolve: (entry) => {
          clearTimeout(timer)
          set.delete(waiter)
          resolve(entry)
        },
      }
      const timer = setTimeout(() => waiter.resolve(undefined), ms)
      set.add(waiter)
      signal.once('close', () => waiter.resolve(undefined))
      // A push may have landed between the caller's check and now.
      const cur = this.current.get(cls)
      if (cur && cur.etag !== etag) waiter.resolve(cur)
    })
  }

  private install(entry: BundleEntry) {
    const prev = this.current.get(entry.class)
    if (prev && prev.version >= entry.version) return
    this.current.set(entry.class, entry)
    const set = this.waiters.get(entry.class)
    if (!set) return
    for (const w of [...set]) if (w.etag !== entry.etag) w.resolve(entry)
  }

  private toEntry(row: {
    class: string
    version: number
    issued_at: number
    expires_at: number
    content_hash: string
    signed: string
  }): BundleEntry {
    return {
      class: row.class,
      version: row.version,
      etag: etagOf(row.class, row.version),
      body: row.signed,
      issuedAt: row.issued_at,
      expiresAt: row.expires_at,
      contentHash: row.content_hash,
      payload: (JSON.parse(row.signed) as { payload: BundlePayload }).payload,
    }
  }

  private async refreshClass(cls: string, version: number) {
    const have = this.current.get(cls)
    if (have && have.version >= version) return
    const row = await this.db
      .selectFrom('bundles')
      .selectAll()
      .where('class', '=', cls)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst()
    if (row) this.install(this.toEntry(row))
  }

  private async latestBundles(db: Db) {
    return db
      .selectFrom('bundles as b')
      .innerJoin(
        (eb) =>
          eb
            .selectFrom('bundles')
            .select(['class'])
            .select((e) => e.fn.max('version').as('v'))
            .groupBy('class')
            .as('m'),
        (j) => j.onRef('m.class', '=', 'b.class').onRef('m.v', '=', 'b.version'),
      )
      .selectAll('b')
      .execute()
  }

  async loadAll() {
    for (const row of await this.latestBundles(this.db)) this.install(this.toEntry(row))
  }

  async currentSet(db: Db = this.db): Promise<{ version: number; policies: PolicyFile[] }> {
    const row = await db.selectFrom('policy_sets').selectAll().orderBy('version', 'desc').limit(1).executeTakeFirst()
    return row
      ? { version: row.version, policies: parseJson<PolicyFile[]>(row.policies, []) }
      : { version: 0, policies: [] }
  }

  /**
   * Plan (and unless dry) issue bundles for `classes` from `set`: a class gets a new version when its content changed,
   * it has none yet, or `force` says so (expiry). Runs inside the caller's transaction.
   */
  private async issue(
    trx: Db,
    set: { version: number; policies: PolicyFile[] },
    classes: string[],
    reason: string,
    dry: boolean,
    force: (e: BundleEntry) => boolean = () => false,
  ): Promise<{ plans: ClassPlan[]; issued: BundleEntry[] }> {
    const latest = new Map((await this.latestBundles(trx)).map((r) => [r.class, this.toEntry(r)]))
    const now = new Date()
    const plans: ClassPlan[] = []
    const issued: BundleEntry[] = []
    for (const cls of classes) {
      const cur = latest.get(cls)
      const payload = compileBundle(set.policies, cls, {
        version: (cur?.version ?? 0) + 1,
        now,
        ttlDays: this.opts.ttlDays,
      })
      if (this.opts.exemptions) payload.exemptions.push(...(await this.opts.exemptions(trx, cls, now)))
      const hash = contentHash(payload)
      const { added, removed, changed } = diffApps(cur?.payload.apps ?? [], payload.apps)
      const exemptionsChanged = canonicalJson(cur?.payload.exemptions ?? []) !== canonicalJson(payload.exemptions)
      const needed = !cur || cur.contentHash !== hash || force(cur)
      plans.push({
        class: cls,
        created: !cur,
        currentVersion: cur?.version ?? null,
        newVersion: needed ? payload.version : null,
        added,
        removed,
        changed,
        exemptionsChanged,
      })
      if (!needed || dry) continue
      const signed = JSON.stringify(signBundle(payload, this.key.privateKeyPem))
      const row = {
        class: cls,
        version: payload.version,
        issued_at: Date.parse(payload.issuedAt),
        expires_at: Date.parse(payload.expiresAt),
        content_hash: hash,
        policy_set: set.version,
        reason,
        signed,
      }
      await trx.insertInto('bundles').values(row).execute()
      issued.push(this.toEntry(row))
    }
    return { plans, issued }
  }

  private async publish(issued: BundleEntry[]) {
    for (const e of issued) this.install(e)
    for (const e of issued) {
      await this.notifier
        .publish({ type: 'bundle', class: e.class, version: e.version })
        .catch((err) => this.log.warn({ err }, 'could not notify other instances; they catch up on maintenance'))
    }
  }

  /** Issue a bundle for each class whose content changed (a new class, an exemption) in the caller's transaction. */
  async issueForClasses(trx: Db, classes: string[], reason = 'class-created'): Promise<BundleEntry[]> {
    const set = await this.currentSet(trx)
    return (await this.issue(trx, set, classes, reason, false)).issued
  }

  announce(issued: BundleEntry[]) {
    return this.publish(issued)
  }

  /** Re-sign bundles close to expiry, pick up exemptions that lapsed, and resync with other instances. */
  async maintain() {
    const issued = await retrying(() =>
      this.db.transaction().execute(async (trx) => {
        const set = await this.currentSet(trx)
        const classes = (await trx.selectFrom('classes').select('name').execute()).map((r) => r.name)
        const deadline = Date.now() + this.opts.reissueBeforeMs
        return (await this.issue(trx, set, classes, 'reissue', false, (e) => e.expiresAt <= deadline)).issued
      }),
    )
    await this.loadAll()
    await this.publish(issued)
  }

  parse(items: PolicyPushBody['policies']): PolicyFile[] {
    const issues: ReturnType<typeof formatIssue>[] = []
    const structured: PolicyError['issues'] = []
    const out: PolicyFile[] = []
    items.forEach((item, i) => {
      const file =
        typeof item === 'object' && 'text' in item && typeof item.text === 'string'
          ? String(item.file)
          : `policies[${i}]`
      const text =
        typeof item === 'string'
          ? item
          : 'text' in item && typeof item.text === 'string'
            ? item.text
            : JSON.stringify(item)
      try {
        out.push(parsePolicy(text, file))
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err
        structured.push(...err.issues)
        issues.push(...err.issues.map(formatIssue))
      }
    })
    if (issues.length > 0) {
      throw new ApiError(400, 'invalid_policy', issues.slice(0, 20).join('\n'), { issues: structured.slice(0, 100) })
    }
    const seen = new Set<string>()
    for (const p of out) {
      if (seen.has(p.id)) throw badRequest(`policy id "${p.id}" appears more than once in this push`)
      seen.add(p.id)
    }
    return out
  }

  async push(body: PolicyPushBody, actor: Principal) {
    const pushed = this.parse(body.policies)
    const dry = body.dryRun === true
    const run = async (trx: Db) => {
      const cur = await this.currentSet(trx)
      const byId = new Map(body.replace ? [] : cur.policies.map((p) => [p.id, p]))
      const before = new Map(cur.policies.map((p) => [p.id, p]))
      for (const p of pushed) byId.set(p.id, p)
      const policies = [...byId.values()].sort((a, b) => a.id.localeCompare(b.id))
      const set = { version: cur.version + 1, policies }
      const existing = (await trx.selectFrom('classes').select('name').execute()).map((r) => r.name)
      const newClasses = policyClasses(policies).filter((c) => !existing.includes(c))
      const classes = [...existing, ...newClasses].sort()
      const policyChanges = [
        ...policies.map((p) => {
          const prev = before.get(p.id)
          const status = !prev ? 'added' : canonicalJson(prev) === canonicalJson(p) ? 'unchanged' : 'updated'
          return { id: p.id, title: p.title, apps: p.apps.length, status }
        }),
        ...cur.policies
          .filter((p) => !byId.has(p.id))
          .map((p) => ({ id: p.id, title: p.title, apps: p.apps.length, status: 'removed' })),
      ]
      if (!dry) {
        const now = Date.now()
        if (newClasses.length > 0) {
          await trx
            .insertInto('classes')
            .values(newClasses.map((name) => ({ name, description: 'created by policy push', created_at: now })))
            .execute()
        }
        await trx
          .insertInto('policy_sets')
          .values({ version: set.version, created_at: now, actor: actor.tokenId, policies: JSON.stringify(policies) })
          .execute()
      }
      const { plans, issued } = await this.issue(trx, set, classes, 'push', dry)
      const result = {
        dryRun: dry,
        policySetVersion: set.version,
        policies: policyChanges,
        createdClasses: newClasses,
        classes: plans,
      }
      if (!dry) {
        await writeAudit(trx, actor, 'policy.push', `policy-set:${set.version}`, {
          replace: body.replace === true,
          policies: policyChanges.filter((p) => p.status !== 'unchanged'),
          bundles: plans.filter((p) => p.newVersion !== null).map((p) => ({ class: p.class, version: p.newVersion })),
        })
      }
      return { result, issued }
    }
    if (dry) return (await run(this.db)).result
    const { result, issued } = await retrying(() => this.db.transaction().execute(run))
    await this.publish(issued)
    return result
  }

  async list() {
    const set = await this.currentSet()
    const classes = await this.db.selectFrom('classes').select('name').orderBy('name').execute()
    return {
      policySetVersion: set.version,
      policies: set.policies.map((p) => ({
        id: p.id,
        title: p.title,
        apps: p.apps.map((a) => a.id),
        classes: Object.keys(p.assignments),
      })),
      classes: classes.map(({ name }) => {
        const e = this.current.get(name)
        return {
          class: name,
          version: e?.version ?? null,
          issuedAt: iso(e?.issuedAt),
          expiresAt: iso(e?.expiresAt),
          apps: e?.payload.apps.length ?? 0,
        }
      }),
      keyId: this.key.keyId,
    }
  }

  async history(cls: string | undefined, limit = 100) {
    let q = this.db
      .selectFrom('bundles')
      .select(['class', 'version', 'issued_at', 'expires_at', 'policy_set', 'reason', 'content_hash'])
      .orderBy('issued_at', 'desc')
      .orderBy('version', 'desc')
      .limit(limit)
    if (cls) q = q.where('class', '=', cls)
    const rows = await q.execute()
    return rows.map((r) => ({
      class: r.class,
      version: r.version,
      issuedAt: iso(r.issued_at),
      expiresAt: iso(r.expires_at),
      policySet: r.policy_set,
      reason: r.reason,
      contentHash: r.content_hash.slice(0, 16),
    }))
  }
}
