// The ICU-free Intl.DateTimeFormat of the binaries: part-for-part what ICU answers for node-cron's two UTC requests,
// the real Intl for anything else, and node-cron bundled with it still fires on time.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as esbuild from 'esbuild'
import { describe, expect, it } from 'vitest'
import { __interdictDateTimeFormat as DateTimeFormat } from '../../agent/utc-date-format.js'
import { INTL_SUBSTITUTE, ROOT } from '../../build/bundle.js'

// node-cron's requests (node_modules/node-cron/dist/_shared.js getPartsFormatter / getOffsetFormatter).
const PARTS: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  weekday: 'short',
  hour12: false,
  timeZone: 'Etc/UTC',
}
const OFFSET: Intl.DateTimeFormatOptions = { timeZone: 'UTC', timeZoneName: 'shortOffset' }

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
  it('gives the same parts as ICU for node-cron date parts', () => {
    const real = new Intl.DateTimeFormat('en-US', PARTS)
    const ours = new DateTimeFormat('en-US', PARTS)
    expect(ours).not.toBeInstanceOf(Intl.DateTimeFormat)
    for (const t of INSTANTS) {
      expect(ours.formatToParts(new Date(t)), new Date(t).toISOString()).toEqual(real.formatToParts(new Date(t)))
      expect(ours.format(t)).toBe(real.format(t))
    }
  })

  it('gives the same parts for the offset request (UTC is spelled GMT or GMT+0 by ICU versions)', () => {
    const real = new Intl.DateTimeFormat('en-US', OFFSET)
    const ours = new DateTimeFormat('en-US', OFFSET)
    for (const t of INSTANTS) {
      const r = real.formatToParts(t)
      const o = ours.formatToParts(t)
      expect(o.filter((p) => p.type !== 'timeZoneName')).toEqual(r.filter((p) => p.type !== 'timeZoneName'))
      expect(r.find((p) => p.type === 'timeZoneName')?.value).toMatch(/^GMT(\+0)?$/)
      expect(o.find((p) => p.type === 'timeZoneName')?.value).toBe('GMT')
    }
  })

  it('hands every other request to the real Intl', () => {
    for (const [loc, opts] of [
      ['en-US', { ...PARTS, timeZone: 'Europe/Kyiv' }],
      ['en-US', undefined],
      ['uk-UA', PARTS],
      ['en-US', { ...PARTS, era: 'short' }],
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
    expect(() => new DateTimeFormat('en-US', PARTS).formatToParts(Number.NaN)).toThrow(RangeError)
  })

  it('bundled as the binaries are, node-cron runs a UTC schedule on it every second', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interdict-utc-'))
    try {
      const out = join(dir, 'cron.cjs')
      await esbuild.build({
        stdin: {
          contents: `import { schedule } from 'node-cron'
            let n = 0
            const t = schedule('* * * * * *', () => { n++ }, { timezone: 'Etc/UTC' })
            setTimeout(() => { t.destroy(); console.log(JSON.stringify({ n })) }, 3500)`,
          resolveDir: ROOT,
          loader: 'ts',
        },
        bundle: true,
        platform: 'node',
        format: 'cjs',
        outfile: out,
        logLevel: 'silent',
        define: { ...INTL_SUBSTITUTE.define, 'import.meta.url': '__u' },
        banner: { js: 'var __u = require("node:url").pathToFileURL(__filename).href;' },
        inject: INTL_SUBSTITUTE.inject,
      })
      // Every Intl.DateTimeFormat in the bundle goes through the substitute (which alone reaches globalThis.Intl).
      const js = readFileSync(out, 'utf8')
      expect(js).toMatch(/new __interdictDateTimeFormat\("en-US"/)
      expect(js.match(/(?<![.\w])Intl\.DateTimeFormat\b/g) ?? []).toEqual([])
      const res = spawnSync(process.execPath, [out], { encoding: 'utf8', timeout: 20_000 })
      expect(res.status, res.stderr).toBe(0)
      const { n } = JSON.parse(res.stdout) as { n: number }
      expect(n).toBeGreaterThanOrEqual(2)
      expect(n).toBeLessThanOrEqual(4)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
