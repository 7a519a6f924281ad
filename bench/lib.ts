// Small shared helpers for benchmarks: medians and percentiles, process memory, and a uniform result line.
import { readFileSync } from 'node:fs'

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

export const median = (values: readonly number[]) => percentile(values, 50)

export interface BenchResult {
  measure: string
  target: string
  median: number
  unit: string
  spread?: string
  pass?: boolean
}

/** Print one result line (machine-readable with --json, aligned otherwise). */
export function report(r: BenchResult) {
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(r)}\n`)
  else {
    const verdict = r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL'
    process.stdout.write(
      `${r.measure.padEnd(48)} median ${`${r.median.toFixed(1)} ${r.unit}`.padEnd(14)} ${(r.spread ?? '').padEnd(26)} target ${r.target.padEnd(12)} ${verdict}\n`,
    )
  }
}

/** A memory figure of a process in MB from /proc/PID/status (VmRSS now, VmHWM peak); NaN once it is gone. */
export function procMemMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}
