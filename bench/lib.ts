// Small shared helpers for benchmarks: medians and percentiles, process memory, and a uniform result line.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { AGENT_EXEC_ARGV } from '../build/sea.js'
import { hostTarget, outputName } from '../build/targets.js'

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
export function procMemMb(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile' = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/**
 * How to start the agent as shipped: the standalone binary for this machine when one is built (build/out, or
 * BENCH_AGENT_BIN), else its bundle under this Node with the binary's V8 flags (plus BENCH_NODE_ARGS, for diagnosis).
 */
export async function agentCommand(workDir: string): Promise<{ cmd: string; args: string[]; label: string }> {
  const target = hostTarget() ?? 'linux-x64'
  const built = join('build/out', outputName('interdict-agent', target))
  const bin = process.env.BENCH_AGENT_BIN ?? (existsSync(built) ? built : undefined)
  if (bin) {
    // A binary just written by the build sits in the page cache as large folios, and each page fault maps a whole one:
    // its resident size reads ~20 MB high. Evict it so it loads as on an endpoint, from disk by readahead.
    if (process.platform === 'linux') spawnSync('dd', [`if=${bin}`, 'iflag=nocache', 'count=0', 'status=none'])
    return { cmd: bin, args: [], label: `the standalone binary ${bin} (built ${statSync(bin).mtime.toISOString()})` }
  }
  // Loaded only here: esbuild is not needed when the binary is measured.
  const { bundle } = await import('../build/bundle.js')
  const js = (await bundle('agent/cli.ts', join(workDir, 'interdict-agent.cjs'))).file
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
  return {
    cmd: process.execPath,
    args: [...AGENT_EXEC_ARGV, ...extra, js],
    label: `the agent bundle on Node ${process.version} (no binary in build/out: \`npm run build -- --target ${target} --only agent\`)`,
  }
}
