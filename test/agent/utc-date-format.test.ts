// The ICU-free Intl.DateTimeFormat of the binaries: node-cron's own requests (recorded from node-cron, so a change in
// node-cron shows here) are answered part-for-part as ICU answers them, everything else by the real Intl, and node-cron
// bundled with it still fires on time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { __interdictDateTimeFormat as DateTimeFormat } from '../../agent/utc-date-format.js'
import { INTL_SUBSTITUTE } from '../../build/bundle.js'
import { runBundled } from '../build/run-bundled.js'

type Request = [string, Intl.DateTimeFormatOptions]

const dir = mkdtempSync(join(tmpdir(), 'interdict-utc-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Bundle a script that runs node-cron for a few ticks, with `inject` standing in for Intl.DateTimeFormat; run it. */
function runCron(inject: string[], seconds: number) {
  return runBundled(
    `import { schedule } from 'node-cron'
    let n = 0
    const t = schedule('* * * * * *', () => { n++ }, { timezone: 'Etc/UTC' })
    setTimeout(() => { t.destroy(); console.log(JSON.stringify({ n, seen: globalThis.__seen ?? [] })) }, ${seconds * 1000})`,
    {
      define: { ...INTL_SUBSTITUTE.define, 'import.meta.url': '__u' },
      banner: { js: 'var __u = require("node:url").pathToFileURL(__filename).href;' },
      inject,
    },
  )
}

// Midnights, year and leap-day edges, the epoch, and a spread of ordinary instants.
const INSTANTS = [
  0,
  Date.UTC(2026, 0, 1, 0, 0, 0),
  Date.UTC(2024, 1, 29, 23, 59, 59),
  Date.UTC(2026, 11, 31, 23, 59, 59, 999),
  Date.UTC(2030, 5, 15, 12, 0, 1),
  ...Array.from({ length: 500 }, (_, i) => Date.UTC(2020, 0, 1) + i * 7_919_993_113),
]

describe('UTC DateTimeFormat without ICU', () => {
  let requests: Request[] = []

  beforeAll(async () => {
    // A recording stand-in: what does node-cron ask Intl for?
    const recorder = join(dir, 'recorder.js')
    writeFileSync(
      recorder,
      `export function __interdictDateTimeFormat(l, o) {
        const seen = (globalThis.__seen ??= [])
        if (!seen.some((s) => JSON.stringify(s) === JSON.stringify([l, o]))) seen.push([l, o])
        return new globalThis.Intl.DateTimeFormat(l, o)
      }`,
    )
    const run = await runCron([recorder], 1.5)
    expect(run.status, run.stderr).toBe(0)
    requests = (JSON.parse(run.stdout) as { seen: Request[] }).seen
    // Date parts on every tick, and the zone offset.
    expect(requests.map(([, o]) => Boolean(o.timeZoneName)).sort()).toEqual([false, true])
  }, 60_000)

  it("answers node-cron's requests itself, part for part as ICU does", () => {
    for (const [locale, options] of requests) {
      const real = new Intl.DateTimeFormat(locale, options)
      const ours = new DateTimeFormat(locale, options)
      expect(ours, JSON.stringify(options)).not.toBeInstanceOf(Intl.DateTimeFormat)
      for (const t of INSTANTS) {
        const r = real.formatToParts(t)
        const o = ours.formatToParts(new Date(t))
        // ICU versions spell UTC's short offset GMT or GMT+0 (node-cron reads both as Z); ours says GMT.
        const zone = (ps: Intl.DateTimeFormatPart[]) => ps.find((p) => p.type === 'timeZoneName')?.value
        if (options.timeZoneName) {
          expect(zone(r)).toMatch(/^GMT(\+0)?$/)
          expect(zone(o)).toBe('GMT')
        }
        const rest = (ps: Intl.DateTimeFormatPart[]) => ps.filter((p) => p.type !== 'timeZoneName')
        expect(rest(o), new Date(t).toISOString()).toEqual(rest(r))
        if (!options.timeZoneName) expect(ours.format(t)).toBe(real.format(t))
      }
    }
  })

  it('hands every other request to the real Intl', () => {
    const parts = requests.find(([, o]) => !o.timeZoneName)?.[1] as Intl.DateTimeFormatOptions
    for (const [loc, opts] of [
      ['en-US', { ...parts, timeZone: 'Europe/Kyiv' }],
      ['en-US', { ...parts, timeZone: undefined }],
      ['en-US', undefined],
      ['uk-UA', parts],
      ['en-US', { ...parts, era: 'short' }],
      [undefined, { timeZone: 'UTC' }],
    ] as const) {
      const f = new DateTimeFormat(loc, opts as Intl.DateTimeFormatOptions)
      expect(f).toBeInstanceOf(Intl.DateTimeFormat)
      expect(f.format(0)).toBe(new Intl.DateTimeFormat(loc, opts as Intl.DateTimeFormatOptions).format(0))
    }
    // Called without `new` (systeminformation does) and the static, as on the real one.
    expect((DateTimeFormat as unknown as () => Intl.DateTimeFormat)().resolvedOptions().timeZone).toBe(
      Intl.DateTimeFormat().resolvedOptions().timeZone,
    )
    expect(DateTimeFormat.supportedLocalesOf(['en-US'])).toEqual(['en-US'])
    expect(() => new DateTimeFormat('en-US', parts).formatToParts(Number.NaN)).toThrow(RangeError)
  })

  it('bundled as the binaries are, node-cron runs a UTC schedule on it every second', async () => {
    const run = await runCron(INTL_SUBSTITUTE.inject, 3.5)
    // Every Intl.DateTimeFormat in the bundle goes through the substitute (which alone reaches globalThis.Intl).
    expect(run.js).toMatch(/new __interdictDateTimeFormat\("en-US"/)
    expect(run.js.match(/(?<![.\w])Intl\.DateTimeFormat\b/g) ?? []).toEqual([])
    expect(run.status, run.stderr).toBe(0)
    const { n } = JSON.parse(run.stdout) as { n: number }
    expect(n).toBeGreaterThanOrEqual(2)
    expect(n).toBeLessThanOrEqual(4)
  })
})
