// Simulated fleet: N lightweight agents (timers and requests in worker threads, not processes) enrolled over HTTP,
// long-polling, reporting and sending a heartbeat every minute, against one server process on SQLite. Halfway
// through, a policy push must reach every parked long-poll. Agents come online over the first 10-20 s. Reports the server's CPU and memory (from /proc), p50/p99
// latency per request type and the error count.
//
// Usage: npx tsx bench/server/fleet.ts [--agents 10000] [--minutes 5] [--workers 2] [--quick: 2,000 agents, 1 min]
import { cpus } from 'node:os'
import { Worker } from 'node:worker_threads'
import { percentile, procMemMb, report } from '../lib.js'
import { api, benchServer, cpuSeconds, enroll, sized } from './common.js'

const agents = sized('agents', 10_000, 2_000)
const minutes = sized('minutes', 5, 1)
const workers = sized('workers', 2, 2)
const periodMs = 60_000
const waitSec = 55

const srv = await benchServer()
const pid = srv.pid()
try {
  const t0 = performance.now()
  const tokens = await enroll(srv.url, 'standard', agents)
  const enrollS = (performance.now() - t0) / 1000
  console.error(`enrolled ${agents} agents in ${enrollS.toFixed(1)} s (${(agents / enrollS).toFixed(0)}/s)`)

  type Result = {
    lat: Record<'poll' | 'report' | 'heartbeat' | 'push', number[]>
    steady: Record<'poll' | 'report' | 'heartbeat', number[]>
    errors: Record<string, number>
    errorSamples: string[]
  }
  const durationMs = minutes * 60_000
  const threads: Worker[] = []
  const results: Promise<Result>[] = []
  for (let w = 0; w < workers; w++) {
    const slice = tokens.filter((_, i) => i % workers === w)
    // A TypeScript worker: register tsx's loader inside the thread, then import the module.
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => {
      register()
      return import(${JSON.stringify(new URL('./fleet-worker.ts', import.meta.url).href)})
    })`
    const worker = new Worker(boot, {
      eval: true,
      workerData: {
        base: srv.url,
        tokens: slice,
        durationMs,
        periodMs,
        waitSec,
        rampMs: Math.min(20_000, durationMs / 6),
      },
    })
    threads.push(worker)
    results.push(
      new Promise((resolve, reject) => {
        worker.on('message', (m) => {
          if (m.lat) resolve(m as Result)
        })
        worker.on('error', reject)
      }),
    )
  }
  // Sample the server every second: CPU (user+system over wall time, in % of one core) and RSS.
  const startCpu = cpuSeconds(pid)
  const startWall = performance.now()
  const cpuPct: number[] = []
  const rss: number[] = []
  let lastCpu = startCpu
  let lastWall = startWall
  const sampler = setInterval(() => {
    const c = cpuSeconds(pid)
    const now = performance.now()
    cpuPct.push(((c - lastCpu) / ((now - lastWall) / 1000)) * 100)
    rss.push(procMemMb(pid))
    lastCpu = c
    lastWall = now
  }, 1000)
  // The push: halfway, a new policy for the fleet's class; every parked long-poll must get it.
  const pushTimer = setTimeout(async () => {
    const at = Date.now()
    for (const t of threads) t.postMessage({ pushAt: at })
    await api(srv.url, 'POST', '/api/v1/admin/policies', {
      policies: [
        {
          id: 'fleet-push',
          title: 'fleet push',
          apps: [{ id: 'fleetapp', name: 'FleetApp', match: { processNames: ['fleetapp'] } }],
          assignments: { standard: { actions: ['report'] } },
        },
      ],
    }).catch((err) => console.error(`push failed: ${err}`))
  }, durationMs / 2)
  const all = await Promise.all(results)
  clearInterval(sampler)
  clearTimeout(pushTimer)
  for (const t of threads) await t.terminate()
  const wall = (performance.now() - startWall) / 1000
  const avgCpu = ((cpuSeconds(pid) - startCpu) / wall) * 100

  const merge = (k: keyof Result['lat']) => all.flatMap((r) => r.lat[k])
  const errors: Record<string, number> = {}
  for (const r of all) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
  const errorCount = Object.values(errors).reduce((s, n) => s + n, 0)
  const samples = all.flatMap((r) => r.errorSamples).slice(0, 5)
  const label = `fleet ${agents} agents ${minutes} min`
  // Request latencies: p99 over the whole run, and outside the 5 s after the push (every agent re-polls at once then);
  // p50 alongside. No DESIGN target: informational, measured on a machine shared with the load generator.
  const line = (kind: keyof Result['steady']) => {
    const xs = merge(kind)
    const calm = all.flatMap((r) => r.steady[kind])
    report({
      measure: `${label}: ${kind} p99`,
      target: '-',
      median: percentile(xs, 99),
      unit: 'ms',
      spread: `p50 ${percentile(xs, 50).toFixed(1)}, p99 off-push ${percentile(calm, 99).toFixed(0)} ms, n ${xs.length}`,
    })
  }
  line('report')
  line('heartbeat')
  line('poll')
  const pushes = merge('push')
  const arrived = pushes.length
  report({
    measure: `${label}: push reaches all parked polls`,
    target: '<= 2000 ms',
    median: Math.max(...pushes),
    unit: 'ms',
    spread: `p50 ${percentile(pushes, 50).toFixed(0)} p99 ${percentile(pushes, 99).toFixed(0)} ms`,
    pass: Math.max(...pushes) <= 2000 && arrived === agents,
  })
  report({
    measure: `${label}: server CPU`,
    target: '-',
    median: avgCpu,
    unit: '% core',
    spread: `peak ${Math.max(...cpuPct).toFixed(0)}% (1 s samples)`,
  })
  report({
    measure: `${label}: server RSS`,
    target: '-',
    median: Math.max(...rss),
    unit: 'MB',
    spread: `end ${rss.at(-1)?.toFixed(0)} MB (peak shown)`,
  })
  report({
    measure: `${label}: errors`,
    target: '0',
    median: errorCount,
    unit: '',
    spread: `push reached ${arrived}/${agents}`,
    pass: errorCount === 0 && arrived === agents,
  })
  console.error(
    `fleet: ${agents} agents x ${minutes} min over ${workers} worker threads (${cpus().length} cores shared with the ` +
      `server); server CPU avg ${avgCpu.toFixed(0)}% of a core, RSS peak ${Math.max(...rss).toFixed(0)} MB; ` +
      `reports ${merge('report').length}, heartbeats ${merge('heartbeat').length}, push reached ${arrived}/${agents}; ` +
      `errors ${JSON.stringify(errors)}${samples.length ? ` e.g. ${samples.join(' | ')}` : ''}`,
  )
} finally {
  await srv.stop()
}
