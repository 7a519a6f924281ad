// Admin writes: classes, enroll secrets, tokens, device revocation, and the first-start admin token. Each change and
// its audit record are one transaction.
import type { Db } from '../storage/db.js'
import type { Role } from '../storage/schema.js'
import type { AuthService, Principal } from './auth.js'
import { writeAudit } from './audit.js'
import type { PolicyService } from './policy.js'
import { ApiError, conflict, hashSecret, iso, newId, newSecret, notFound } from './util.js'

export class AdminService {
  constructor(
    private readonly db: Db,
    private readonly auth: AuthService,
    private readonly policy: PolicyService,
    private readonly onRevoke: () => void,
  ) {}

  async createClass(actor: Principal, name: string, description?: string) {
    const issued = await this.db.transaction().execute(async (trx) => {
      const exists = await trx.selectFrom('classes').select('name').where('name', '=', name).executeTakeFirst()
      if (exists) throw conflict(`class "${name}" already exists`)
      await trx
        .insertInto('classes')
        .values({ name, description: description ?? null, created_at: Date.now() })
        .execute()
      const issued = await this.policy.issueForClasses(trx, [name])
      await writeAudit(trx, actor, 'class.create', `class:${name}`, { description: description ?? null })
      return issued
    })
    await this.policy.announce(issued)
    return { name, description: description ?? null, bundleVersion: issued[0]?.version ?? null }
  }

  async listClasses() {
    const classes = await this.db.selectFrom('classes').selectAll().orderBy('name').execute()
    const counts = await this.db
      .selectFrom('devices')
      .select(['class'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '<>', 'revoked')
      .groupBy('class')
      .execute()
    const byClass = new Map(counts.map((c) => [c.class, Number(c.n)]))
    return classes.map((c) => ({
      name: c.name,
      description: c.description,
      createdAt: iso(c.created_at),
      devices: byClass.get(c.name) ?? 0,
      bundleVersion: this.policy.get(c.name)?.version ?? null,
    }))
  }

  async createEnrollSecret(
    actor: Principal,
    body: { class: string; label?: string; expiresInHours?: number; maxUses?: number },
  ) {
    const secret = newSecret('enr')
    const id = newId('enr')
    const now = Date.now()
    const expiresAt = body.expiresInHours ? now + body.expiresInHours * 3_600_000 : null
    await this.db.transaction().execute(async (trx) => {
      const cls = await trx.selectFrom('classes').select('name').where('name', '=', body.class).executeTakeFirst()
      if (!cls) throw notFound(`class "${body.class}" does not exist; create it first`)
      await trx
        .insertInto('enroll_secrets')
        .values({
          id,
          hash: hashSecret(secret),
          class: body.class,
          label: body.label ?? null,
          created_at: now,
          created_by: actor.tokenId,
          expires_at: expiresAt,
          max_uses: body.maxUses ?? null,
          uses: 0,
          revoked_at: null,
        })
        .execute()
      await writeAudit(trx, actor, 'enroll-secret.create', `enroll-secret:${id}`, {
        class: body.class,
        expiresAt: iso(expiresAt),
        maxUses: body.maxUses ?? null,
      })
    })
    return { id, class: body.class, secret, expiresAt: iso(expiresAt), maxUses: body.maxUses ?? null }
  }

  async listEnrollSecrets() {
    const rows = await this.db.selectFrom('enroll_secrets').selectAll().orderBy('created_at', 'desc').execute()
    return rows.map((r) => ({
      id: r.id,
      class: r.class,
      label: r.label,
      createdAt: iso(r.created_at),
      expiresAt: iso(r.expires_at),
      maxUses: r.max_uses,
      uses: r.uses,
      revokedAt: iso(r.revoked_at),
    }))
  }

  async revokeEnrollSecret(actor: Principal, id: string) {
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('enroll_secrets')
        .set({ revoked_at: Date.now() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      if (r.numUpdatedRows === 0n) throw notFound(`no active enroll secret "${id}"`)
      await writeAudit(trx, actor, 'enroll-secret.revoke', `enroll-secret:${id}`)
    })
    return { id, revoked: true }
  }

  async createToken(actor: Principal, role: Exclude<Role, 'device'>, label?: string) {
    const token = newSecret(role === 'admin' ? 'adm' : 'aud')
    const id = newId('tok')
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('tokens')
        .values({
          id,
          hash: hashSecret(token),
          role,
          label: label ?? null,
          device_id: null,
          created_at: Date.now(),
          created_by: actor.tokenId,
          revoked_at: null,
        })
        .execute()
      await writeAudit(trx, actor, 'token.create', `token:${id}`, { role, label: label ?? null })
    })
    return { id, role, label: label ?? null, token }
  }

  async listTokens() {
    const rows = await this.db
      .selectFrom('tokens')
      .select(['id', 'role', 'label', 'created_at', 'created_by', 'revoked_at'])
      .where('role', '<>', 'device')
      .orderBy('created_at')
      .execute()
    return rows.map((r) => ({
      id: r.id,
      role: r.role,
      label: r.label,
      createdAt: iso(r.created_at),
      createdBy: r.created_by,
      revokedAt: iso(r.revoked_at),
    }))
  }

  async revokeToken(actor: Principal, id: string) {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('tokens').select(['role']).where('id', '=', id).executeTakeFirst()
      if (!row || row.role === 'device') throw notFound(`no admin or auditor token "${id}" (revoke devices instead)`)
      if (row.role === 'admin') {
        const others = await trx
          .selectFrom('tokens')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('role', '=', 'admin')
          .where('revoked_at', 'is', null)
          .where('id', '<>', id)
          .executeTakeFirstOrThrow()
        if (Number(others.n) === 0) throw new ApiError(409, 'conflict', 'refusing to revoke the last admin token')
      }
      await trx.updateTable('tokens').set({ revoked_at: Date.now() }).where('id', '=', id).execute()
      await writeAudit(trx, actor, 'token.revoke', `token:${id}`)
    })
    this.auth.flush()
    this.onRevoke()
    return { id, revoked: true }
  }

  async revokeDevice(actor: Principal, id: string) {
    await this.db.transaction().execute(async (trx) => {
      const now = Date.now()
      const r = await trx
        .updateTable('devices')
        .set({ status: 'revoked', revoked_at: now })
        .where('id', '=', id)
        .where('status', '<>', 'revoked')
        .executeTakeFirst()
      if (r.numUpdatedRows === 0n) {
        const exists = await trx.selectFrom('devices').select('id').where('id', '=', id).executeTakeFirst()
        if (!exists) throw notFound(`no device "${id}"`)
        throw conflict(`device "${id}" is already revoked`)
      }
      await trx
        .updateTable('tokens')
        .set({ revoked_at: now })
        .where('device_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute()
      await writeAudit(trx, actor, 'device.revoke', `device:${id}`)
    })
    this.auth.flush()
    this.onRevoke()
    return { id, revoked: true }
  }
}

/**
 * First start: make sure an admin can get in. INTERDICT_ADMIN_TOKEN (automation) is registered if it is not known
 * yet (and never resurrected once revoked); otherwise, when no admin token exists, one is generated and returned
 * so the caller prints it once.
 */
export async function bootstrapAdmin(db: Db, envToken: string | undefined): Promise<string | undefined> {
  const now = Date.now()
  if (envToken) {
    if (envToken.length < 16) throw new Error('INTERDICT_ADMIN_TOKEN must be at least 16 characters')
    const hash = hashSecret(envToken)
    const known = await db.selectFrom('tokens').select('id').where('hash', '=', hash).executeTakeFirst()
    if (!known) {
      const id = newId('tok')
      await db
        .insertInto('tokens')
        .values({
          id,
          hash,
          role: 'admin',
          label: 'INTERDICT_ADMIN_TOKEN',
          device_id: null,
          created_at: now,
          created_by: null,
          revoked_at: null,
        })
        .onConflict((oc) => oc.column('hash').doNothing())
        .execute()
      await writeAudit(db, undefined, 'token.bootstrap', `token:${id}`, { source: 'INTERDICT_ADMIN_TOKEN' })
    }
    return undefined
  }
  const admins = await db
    .selectFrom('tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '=', 'admin')
    .executeTakeFirstOrThrow()
  if (Number(admins.n) > 0) return undefined
  const token = newSecret('adm')
  const id = newId('tok')
  await db
    .insertInto('tokens')
    .values({
      id,
      hash: hashSecret(token),
      role: 'admin',
      label: 'first start',
      device_id: null,
      created_at: now,
      created_by: null,
      revoked_at: null,
    })
    .execute()
  await writeAudit(db, undefined, 'token.bootstrap', `token:${id}`, { source: 'generated at first start' })
  return token
}
