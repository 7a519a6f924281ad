// One full scan: run every collector for this OS (each isolated: a failure is recorded, the rest go on), then match.
import type { Matcher, Finding } from '../policies/match.js'
import type { CollectContext, Collector, Row } from './collectors/types.js'

export interface CollectorRun {
  name: string
  rows: number
  ms: number
  error?: string
  /** Things the collector skipped but worked around (an unreadable plist, a hive it could not load). */
  warnings?: string[]
}

export interface ScanResult {
  startedAt: string
  ms: number
  rows: Row[]
  findings: Finding[]
  collectors: CollectorRun[]
}

export interface ScanProgress {
  done: number
  total: number
  collector: string
}

export async function runScan(
  collectors: readonly Collector[],
  ctx: CollectContext,
  matcher: Matcher,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanResult> {
  const started = performance.now()
  const startedAt = new Date().toISOString()
  let done = 0
  // Collectors are I/O-bound and independent: run them concurrently.
  const runs = await Promise.all(
    collectors.map(async (c) => {
      const t0 = performance.now()
      const warnings: string[] = []
      // Capped: one broken folder must not turn a report into a wall of text.
      const warn = (m: string) => void (warnings.length < 20 && warnings.push(m))
      const withWarnings = (run: CollectorRun): CollectorRun => (warnings.length ? { ...run, warnings } : run)
      try {
        const rows = await c.collect({ ...ctx, warn })
        return { run: withWarnings({ name: c.name, rows: rows.length, ms: performance.now() - t0 }), rows }
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err)
        return { run: withWarnings({ name: c.name, rows: 0, ms: performance.now() - t0, error }), rows: [] as Row[] }
      } finally {
        done++
        onProgress?.({ done, total: collectors.length, collector: c.name })
      }
    }),
  )
  const rows = runs.flatMap((r) => r.rows)
  return {
    startedAt,
    ms: performance.now() - started,
    rows,
    findings: matcher.matchAll(rows),
    collectors: runs.map((r) => r.run),
  }
}
