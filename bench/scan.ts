// bench/scan: median full-scan time on this machine with 50 and 500 extra processes running.
// Target (DESIGN §6): under 250 ms median with ~500 processes. (Agent memory: bench/agent-rss.ts measures the real
// bundled agent; this process runs under tsx, whose loader would distort it.)
// Run: npx tsx bench/scan.ts [--runs N]
import { type ChildProcess, spawn } from 'node:child_process'
import { collectContext } from '../agent/collectors/context.js'
import { collectorsFor } from '../agent/collectors/index.js'
import { localBundle } from '../agent/policy-source.js'
import { runScan } from '../agent/scan.js'
import { compileMatcher } from '../policies/match.js'
import { median, percentile, report } from './lib.js'

const runsArg = process.argv.indexOf('--runs')
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : process.argv.includes('--quick') ? 5 : 15

// The extra processes come from one shell, so spawning 500 children does not inflate this process's own memory.
async function withProcesses(n: number) {
  const shell: ChildProcess = spawn('sh', ['-c', `for i in $(seq ${n}); do sleep 600 & done; wait`], {
    stdio: 'ignore',
    detached: true,
  })
  await new Promise((r) => setTimeout(r, 500))
  return () => process.kill(-shell.pid!, 'SIGKILL')
}

const bundle = await localBundle(undefined, 'military')
const matcher = compileMatcher(bundle.apps, 'linux')
const ctx = await collectContext(matcher)
const collectors = collectorsFor(ctx.os)
const procCount = () => import('node:fs').then((fs) => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length)

for (const extra of [50, 500]) {
  const stop = await withProcesses(extra)
  // First scan fills the file-identity cache (every distinct executable hashed once); medians are of warm scans.
  const cold = await runScan(collectors, ctx, matcher)
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) times.push((await runScan(collectors, ctx, matcher)).ms)
  const procs = await procCount()
  const med = median(times)
  report({
    measure: `full scan, ${procs} processes, ${cold.rows.length} rows`,
    target: '< 250 ms',
    median: med,
    unit: 'ms',
    spread: `p90 ${percentile(times, 90).toFixed(0)} cold ${cold.ms.toFixed(0)} ms`,
    pass: med < 250,
  })
  stop()
}
