// `npm run bench`: run every benchmark script in bench/ (each in its own process, so one's memory and CPU never
// colour another's) and print one table: measure, target, median, spread, pass/fail.
// Absolute times depend on the machine; the table says which one it ran on.
import { spawn } from 'node:child_process'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { BenchResult } from './lib.js'

const HERE = new URL('.', import.meta.url).pathname
// Each entry: script path relative to bench/ and its arguments. Scripts print one JSON line per measure with --json.
const SCRIPTS: [string, string[]][] = [
  ['scan.ts', []],
  ['kill-latency.ts', []],
  ['server/ingest.ts', []],
  ['server/polls.ts', []],
  ['server/push.ts', []],
  ['server/compliance.ts', []],
]

const only = process.argv.slice(2).filter((a) => !a.startsWith('-'))

function runScript(script: string, args: string[]): Promise<BenchResult[]> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, script), ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('close', (code) => {
      const results = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as BenchResult)
      if (code !== 0)
        results.push({ measure: `${script} exited ${code}`, target: '-', median: Number.NaN, unit: '', pass: false })
      resolve(results)
    })
  })
}

const all: BenchResult[] = []
const selected = SCRIPTS.filter(([s]) => only.length === 0 || only.some((o) => s.includes(o)))
for (const [i, [script, args]] of selected.entries()) {
  process.stderr.write(`[${i + 1}/${selected.length}] ${script} ...\n`)
  all.push(...(await runScript(script, args)))
}

const rows = all.map((r) => [
  r.measure,
  r.target,
  Number.isFinite(r.median) ? `${r.median.toFixed(r.median < 10 ? 2 : 0)} ${r.unit}` : 'n/a',
  r.spread ?? '',
  r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL',
])
const head = ['measure', 'target', 'median', 'spread', 'result']
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')
console.log(
  `\nInterdict benchmarks, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}),`,
)
console.log(`${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Absolute times are machine-dependent.\n`)
console.log(fmt(head))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const r of rows) console.log(fmt(r))
process.exitCode = all.some((r) => r.pass === false) ? 1 : 0
