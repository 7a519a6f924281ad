// `npm run bench`: run every benchmark script in bench/ (each in its own process, so one's memory and CPU never
// colour another's) and print one table: measure, target, median, spread, pass/fail.
// Absolute times depend on the machine; the table says which one it ran on.
//
//   npm run bench [-- [--quick] [--no-pg] [name ...]]
//
// --quick shrinks counts and durations in every script (a ~5 minute smoke run of the whole table; not figures to
// quote). The PostgreSQL variants run when INTERDICT_TEST_PG (or the default local test database) answers; otherwise
// they are listed as skipped. Names select scripts by substring, e.g. `npm run bench -- reports`.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { outputName } from '../build/targets.js'
import type { BenchResult } from './lib.js'
import { PG_BASE } from './server/common.js'

const HERE = new URL('.', import.meta.url).pathname
// Each entry: script path relative to bench/ and its arguments. Scripts print one JSON line per measure with --json.
const SCRIPTS: [string, string[]][] = [
  ['scan.ts', []],
  ['agent-rss.ts', []],
  ['kill-latency.ts', []],
  // What this machine serves with no Interdict logic: the server rows read against it.
  ['server/baseline.ts', []],
  ['server/reports.ts', []],
  ['server/reports.ts', ['--pg']],
  ['server/reports.ts', ['--binary', join('build/out', outputName('interdict-server', 'linux-x64'))]],
  ['server/polls.ts', []],
  ['server/push.ts', []],
  ['server/push.ts', ['--pg']],
  ['server/compliance.ts', []],
  ['server/compliance.ts', ['--pg']],
  ['server/fleet.ts', []],
]

const argv = process.argv.slice(2)
const only = argv.filter((a) => !a.startsWith('-'))
const passThrough = argv.includes('--quick') ? ['--quick'] : []

async function pgAvailable(): Promise<boolean> {
  if (argv.includes('--no-pg')) return false
  const c = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 3000 })
  try {
    await c.connect()
    await c.query('select 1')
    return true
  } catch {
    return false
  } finally {
    await c.end().catch(() => {})
  }
}

function runScript(script: string, args: string[]): Promise<BenchResult[]> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, script), ...args, ...passThrough, '--json'], {
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
        results.push({
          measure: `${[script, ...args].join(' ')} exited ${code}`,
          target: '-',
          median: Number.NaN,
          unit: '',
          pass: false,
        })
      resolve(results)
    })
  })
}

const all: BenchResult[] = []
const havePg = await pgAvailable()
const selected = SCRIPTS.filter(([s]) => only.length === 0 || only.some((o) => s.includes(o)))
const started = performance.now()
for (const [i, [script, args]] of selected.entries()) {
  const name = [script, ...args].join(' ')
  const bin = args.includes('--binary') ? args[args.indexOf('--binary') + 1] : undefined
  if (bin && !existsSync(bin)) {
    process.stderr.write(`[${i + 1}/${selected.length}] ${name}: skipped (no ${bin}: npm run build)\n`)
    all.push({ measure: `${name}: skipped, not built`, target: '-', median: Number.NaN, unit: '' })
    continue
  }
  if (args.includes('--pg') && !havePg) {
    process.stderr.write(`[${i + 1}/${selected.length}] ${name}: skipped (no PostgreSQL at INTERDICT_TEST_PG)\n`)
    all.push({ measure: `${name}: skipped, no PostgreSQL`, target: '-', median: Number.NaN, unit: '' })
    continue
  }
  process.stderr.write(`[${i + 1}/${selected.length}] ${name} ...\n`)
  all.push(...(await runScript(script, args)))
}
const elapsed = ((performance.now() - started) / 1000).toFixed(0)

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
console.log(
  `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${elapsed} s${passThrough.length ? ', --quick' : ''}. ` +
    'Absolute times are machine-dependent.\n',
)
console.log(fmt(head))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const r of rows) console.log(fmt(r))
process.exitCode = all.some((r) => r.pass === false) ? 1 : 0
