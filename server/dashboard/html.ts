// Server-side HTML: a tagged template that escapes every interpolation unless it is already Safe (the result of
// another html`` or an explicit raw()). Hostnames, app names and evidence come from devices, so nothing is trusted.

export class Safe {
  constructor(readonly value: string) {}
  toString() {
    return this.value
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/** Only for text this module's callers wrote themselves (CSS, fixed markup); never for data. */
export const raw = (s: string) => new Safe(s)

function render(v: unknown): string {
  if (v instanceof Safe) return v.value
  if (v === null || v === undefined || v === false) return ''
  if (Array.isArray(v)) return v.map(render).join('')
  return escapeHtml(String(v))
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Safe {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!
  return new Safe(out)
}

/** A query string from the non-empty entries (filters keep links short and round-trip through GET forms). */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v))
  const s = u.toString()
  return s ? `?${s}` : ''
}

const pad = (n: number) => String(n).padStart(2, '0')

/** `2025-03-04 13:05 UTC` inside <time>, with a relative hint in the title. */
export function time(isoText: string | null | undefined, empty = '—'): Safe {
  if (!isoText) return html`<span class="muted">${empty}</span>`
  const d = new Date(isoText)
  const text = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  return html`<time datetime="${isoText}" title="${ago(d.getTime())}">${text}</time>`
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000)
  if (s < 0) return 'in the future'
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86_400)} d ago`
}
