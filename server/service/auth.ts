// Bearer-token authentication. Tokens are looked up by SHA-256 digest; results are cached briefly because every poll
// and report authenticates (20,000/s must not mean 20,000 queries/s). Revocation clears the cache on every instance.
import type { Db } from '../storage/db.js'
import type { Role } from '../storage/schema.js'
import { hashSecret } from './util.js'

export interface Principal {
  tokenId: string
  role: Role
  deviceId?: string
  class?: string
}

const MAX_ENTRIES = 250_000

export class AuthService {
  private cache = new Map<string, { p: Principal; until: number }>()

  constructor(
    private readonly db: Db,
    private readonly ttlMs = 15_000,
  ) {}

  static bearer(header: string | undefined): string | undefined {
    if (!header) return undefined
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header)
    return m?.[1]
  }

  /** The cached principal of a bearer header, without going to the database (undefined = ask authenticate()). */
  cached(header: string | undefined): Principal | undefined {
    const token = AuthService.bearer(header)
    if (!token) return undefined
    const hit = this.cache.get(token)
    return hit && hit.until > Date.now() ? hit.p : undefined
  }

  async authenticate(header: string | undefined): Promise<Principal | undefined> {
    const token = AuthService.bearer(header)
    if (!token) return undefined
    // Keyed by the token itself: hashing on every cached request costs more than the rest of a 304.
    const now = Date.now()
    const hit = this.cache.get(token)
    if (hit && hit.until > now) return hit.p
    const hash = hashSecret(token)
    const row = await this.db
      .selectFrom('tokens as t')
      .leftJoin('devices as d', 'd.id', 't.device_id')
      .select(['t.id', 't.role', 't.device_id', 'd.class', 'd.status'])
      .where('t.hash', '=', hash)
      .where('t.revoked_at', 'is', null)
      .executeTakeFirst()
    if (!row) {
      this.cache.delete(token)
      return undefined
    }
    if (row.role === 'device' && (!row.device_id || !row.class || row.status === 'revoked')) return undefined
    const p: Principal =
      row.role === 'device'
        ? { tokenId: row.id, role: 'device', deviceId: row.device_id!, class: row.class! }
        : { tokenId: row.id, role: row.role }
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
    this.cache.set(token, { p, until: now + this.ttlMs })
    return p
  }

  private byIdCache = new Map<string, { p: Principal | undefined; until: number }>()

  /**
   * An admin or auditor principal by token id, if that token is still valid (dashboard sessions hold the id, never the
   * token). Cached like authenticate(); flush() (every revocation, on every instance) clears it too.
   */
  async adminById(tokenId: string): Promise<Principal | undefined> {
    const now = Date.now()
    const hit = this.byIdCache.get(tokenId)
    if (hit && hit.until > now) return hit.p
    const row = await this.db
      .selectFrom('tokens')
      .select(['id', 'role'])
      .where('id', '=', tokenId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    const p: Principal | undefined = row && row.role !== 'device' ? { tokenId: row.id, role: row.role } : undefined
    if (this.byIdCache.size >= 10_000) this.byIdCache.clear()
    this.byIdCache.set(tokenId, { p, until: now + this.ttlMs })
    return p
  }

  flush() {
    this.cache.clear()
    this.byIdCache.clear()
  }
}
