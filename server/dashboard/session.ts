// Dashboard sessions: a signed cookie holding token id, role, expiry and a nonce (never the token). The HMAC key lives
// in the `settings` table, so every instance sharing the database accepts every other instance's sessions. The CSRF
// token is derived from the session by HMAC, so it needs no storage either.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Db } from '../storage/db.js'
import type { Role } from '../storage/schema.js'

const SESSION_TTL_MS = 12 * 3_600_000
const SETTING = 'dashboard.session-key'

export interface Session {
  tokenId: string
  role: Exclude<Role, 'device'>
  expiresAt: number
  nonce: string
  /** The signed cookie value, for deriving the CSRF token. */
  value: string
}

/** Reads the shared key, creating it on first use; a concurrent first start on another instance wins and is read. */
export async function loadSessionKey(db: Db): Promise<Buffer> {
  await db
    .insertInto('settings')
    .values({ key: SETTING, value: randomBytes(32).toString('base64url') })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute()
  const row = await db.selectFrom('settings').select('value').where('key', '=', SETTING).executeTakeFirstOrThrow()
  return Buffer.from(row.value, 'base64url')
}

const mac = (key: Buffer, purpose: string, data: string) =>
  createHmac('sha256', key).update(`${purpose}\n${data}`).digest('base64url')

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export class Sessions {
  constructor(
    private readonly key: Buffer,
    readonly secure: boolean,
  ) {}

  /** `__Host-` makes the browser insist on Secure, Path=/ and no Domain; plain HTTP (local use) cannot have it. */
  get cookieName() {
    return this.secure ? '__Host-interdict_session' : 'interdict_session'
  }

  issue(tokenId: string, role: Exclude<Role, 'device'>, now = Date.now()): string {
    const body = `v1.${tokenId}.${role}.${now + SESSION_TTL_MS}.${randomBytes(12).toString('base64url')}`
    return `${body}.${mac(this.key, 'session', body)}`
  }

  verify(value: string | undefined, now = Date.now()): Session | undefined {
    if (!value || value.length > 512) return undefined
    const parts = value.split('.')
    if (parts.length !== 6 || parts[0] !== 'v1') return undefined
    const [, tokenId, role, exp, nonce, sig] = parts as [string, string, string, string, string, string]
    if (!safeEqual(sig, mac(this.key, 'session', parts.slice(0, 5).join('.')))) return undefined
    const expiresAt = Number(exp)
    if (!Number.isFinite(expiresAt) || expiresAt <= now) return undefined
    if (role !== 'admin' && role !== 'auditor') return undefined
    return { tokenId, role, expiresAt, nonce, value }
  }

  csrf(s: Session): string {
    return mac(this.key, 'csrf', s.value)
  }

  checkCsrf(s: Session, token: string | undefined): boolean {
    return typeof token === 'string' && safeEqual(token, this.csrf(s))
  }

  setCookie(value: string): string {
    return this.cookie(value, Math.floor(SESSION_TTL_MS / 1000))
  }

  clearCookie(): string {
    return this.cookie('', 0)
  }

  private cookie(value: string, maxAge: number) {
    return `${this.cookieName}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}`
  }

  read(header: string | undefined): string | undefined {
    if (!header) return undefined
    for (const part of header.split(';')) {
      const i = part.indexOf('=')
      if (i > 0 && part.slice(0, i).trim() === this.cookieName) return part.slice(i + 1).trim()
    }
    return undefined
  }
}
