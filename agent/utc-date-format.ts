// Intl.DateTimeFormat for the bundled binaries (build/bundle.ts substitutes it for the global): node-cron reads every
// tick's date parts through Intl, and the first Intl.DateTimeFormat of a process pages in ~8 MB of ICU data that then
// stays resident. The agent's schedules run in UTC (agent/daemon.ts), and UTC parts are plain arithmetic; so the two
// shapes node-cron asks for are answered here when the zone is UTC, and everything else goes to the real Intl.
// Output is part-for-part what ICU gives for en-US (test/agent/utc-date-format.test.ts compares them).

type Part = { type: string; value: string }
type Options = Intl.DateTimeFormatOptions

const Real: typeof Intl.DateTimeFormat = (globalThis as unknown as { Intl: typeof Intl }).Intl.DateTimeFormat

const UTC_ZONES = new Set(['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT'])
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
/** node-cron's date-parts request, less the zone. */
const PARTS: Options = {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  weekday: 'short',
  hour12: false,
}
const pad = (n: number) => String(n).padStart(2, '0')
const lit = (value: string): Part => ({ type: 'literal', value })

/** Which of node-cron's two requests `options` is, in UTC and en-US; undefined for anything else. */
function shapeOf(locales: unknown, options: Options | undefined): 'parts' | 'offset' | undefined {
  if (locales !== 'en-US' || !options || !UTC_ZONES.has(options.timeZone ?? '')) return undefined
  const rest: Record<string, unknown> = { ...options }
  delete rest.timeZone
  const keys = Object.keys(rest)
  if (keys.length === 1 && rest.timeZoneName === 'shortOffset') return 'offset'
  const want = Object.entries(PARTS)
  return keys.length === want.length && want.every(([k, v]) => rest[k] === v) ? 'parts' : undefined
}

class UtcFormat {
  constructor(private readonly shape: 'parts' | 'offset') {}

  formatToParts(date: Date | number = Date.now()): Part[] {
    const d = new Date(date)
    if (Number.isNaN(d.getTime())) throw new RangeError('Invalid time value')
    const y = String(d.getUTCFullYear())
    if (this.shape === 'offset') {
      const [m, day] = [String(d.getUTCMonth() + 1), String(d.getUTCDate())]
      return [
        { type: 'month', value: m },
        lit('/'),
        { type: 'day', value: day },
        lit('/'),
        { type: 'year', value: y },
        lit(', '),
        { type: 'timeZoneName', value: 'GMT' },
      ]
    }
    // en-US with hour12:false counts midnight as hour 24 (ICU's h24 cycle); node-cron reads it back as 0.
    const h = d.getUTCHours() || 24
    return [
      { type: 'weekday', value: WEEKDAYS[d.getUTCDay()]! },
      lit(', '),
      { type: 'month', value: pad(d.getUTCMonth() + 1) },
      lit('/'),
      { type: 'day', value: pad(d.getUTCDate()) },
      lit('/'),
      { type: 'year', value: y },
      lit(', '),
      { type: 'hour', value: pad(h) },
      lit(':'),
      { type: 'minute', value: pad(d.getUTCMinutes()) },
      lit(':'),
      { type: 'second', value: pad(d.getUTCSeconds()) },
    ]
  }

  format(date?: Date | number): string {
    return this.formatToParts(date)
      .map((p) => p.value)
      .join('')
  }

  resolvedOptions(): Intl.ResolvedDateTimeFormatOptions {
    // Rarely asked; the real one answers it exactly (and only then loads ICU).
    return new Real(
      'en-US',
      this.shape === 'parts' ? { ...PARTS, timeZone: 'UTC' } : { timeZone: 'UTC', timeZoneName: 'shortOffset' },
    ).resolvedOptions()
  }
}

/** Drop-in for `Intl.DateTimeFormat` (callable with or without `new`, statics included). */
export const __interdictDateTimeFormat = Object.assign(
  function DateTimeFormat(locales?: string | string[], options?: Options) {
    const shape = shapeOf(locales, options)
    return shape ? new UtcFormat(shape) : new Real(locales, options)
  },
  { supportedLocalesOf: Real.supportedLocalesOf.bind(Real) },
) as unknown as typeof Intl.DateTimeFormat
