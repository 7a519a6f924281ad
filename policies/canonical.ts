// Canonical JSON: object keys sorted, no whitespace, so a signature covers meaning rather than formatting.
// (RFC 8785-style for the values policies use: strings, finite numbers, booleans, null, arrays, plain objects.)
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot encode a non-finite number')
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
  }
  throw new TypeError(`canonical JSON cannot encode a ${typeof value}`)
}

/**
 * Sort comparator in code-unit order, the order `.sort()` uses: the same on every machine (localeCompare depends on
 * the locale, and its first call loads ICU collation data, megabytes of the agent's resident memory).
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
