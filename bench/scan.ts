// bench/scan: median full-scan time and the peak RSS of a one-shot `interdict-agent scan`, with 50 and 500 extra
// processes running. Targets (DESIGN §6): under 250 ms median with ~500 processes; RSS under 70 MB.
// Times are measured in this process (warm file cache, as in the daemon). Memory is measured on the agent as shipped,
// in its own process (bench/lib.ts agentCommand): this process runs under tsx, whose loader would distort it. The
// resident daemon's memory: bench/agent-rss.ts.
// Run: npx tsx bench/scan.ts [--runs N]
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { collectContext } from '../agent/collectors/context.js'
import { collectorsFor } from '../agent/collectors/index.js'
import { localBundle } from '../agent/policy-source.js'
import { runScan } from '../agent/scan.js'
import { compileMatcher } from '../policies/match.js'
import { agentCommand, median, percentile, report } from './lib.js'

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

// The agent as shipped: the standalone binary when one is built for this machine (`npm run build`, or BENCH_AGENT_BIN),
// else the same bundle under this Node with the binary's V8 flags. It prints its own peak RSS at exit.
const work = mkdtempSync(join(tmpdir(), 'interdict-bench-scan-'))
const agent = await agentCommand(work)
process.stderr.write(`scan: memory of ${agent.label}\n`)
function agentScanPeakMb(): number {
  const r = spawnSync(agent.cmd, [...agent.args, 'scan', '--class', 'military', '--json'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, INTERDICT_PRINT_PEAK_RSS: '1' },
  })
  const kb = /PEAK_RSS_KB=(\d+)/.exec(r.stderr)?.[1]
  if (!kb) throw new Error(`agent scan printed no peak RSS: ${r.stderr}`)
  return Number(kb) / 1024
}

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
  const peaks = Array.from({ length: Math.max(3, Math.round(RUNS / 5)) }, agentScanPeakMb)
  const peak = median(peaks)
  report({
    measure: `peak RSS of \`interdict-agent scan\`, ${procs} processes`,
    target: '< 70 MB',
    median: peak,
    unit: 'MB',
    spread: `min ${Math.min(...peaks).toFixed(0)} max ${Math.max(...peaks).toFixed(0)}`,
    pass: peak < 70,
  })
  stop()
}
rmSync(work, { recursive: true, force: true })
