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

  flush() {
    this.cache.clear()
  }
}
