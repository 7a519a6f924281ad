// Small shared pieces of the service layer: typed HTTP-mappable errors, ids and secrets, time parsing, CSV.
import { createHash, randomBytes } from 'node:crypto'

/** An error the routes turn into `{error, message}` with this status. Services throw these, never raw 4xx codes. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export const badRequest = (message: string, extra?: Record<string, unknown>) =>
  new ApiError(400, 'bad_request', message, extra)
export const notFound = (message: string) => new ApiError(404, 'not_found', message)
export const conflict = (message: string) => new ApiError(409, 'conflict', message)

/** Secrets carry a prefix naming their kind, so a leaked one is recognisable (and secret scanners can match it). */
export function newSecret(kind: 'adm' | 'aud' | 'dev' | 'enr'): string {
  return `idt_${kind}_${randomBytes(32).toString('base64url')}`
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`
}

/** Only this digest is stored: a database leak does not leak usable tokens (they are 256-bit random, so no salt). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `24h`, `30m`, `7d` (back from now) or an ISO date-time -> epoch ms. */
export function parseTime(value: string, now = Date.now(), field = 'time'): number {
  const m = /^(\d{1,9})([smhdw])$/.exec(value.trim())
  if (m) return now - Number(m[1]) * UNITS[m[2]!]!
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value)
    if (!Number.isNaN(t)) return t
  }
  throw badRequest(`${field} must be an ISO date-time or a duration like 30m, 24h, 7d (got "${value}")`)
}

export const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString())

function csvCell(v: unknown): string {
  if (v == null) return ''
  let s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)
  // Hostnames and evidence come from devices: stop spreadsheet formula injection when the CSV is opened.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const lines = [columns.join(',')]
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(','))
  return `${lines.join('\r\n')}\r\n`
}

export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (!text) return fallback
  try {
    return JSON.parse(text) as T
  } catch {
    return fallback
  }
}
