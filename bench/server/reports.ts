// Report ingestion: sustained POST /api/v1/reports (~1 KB, 3 findings) against a server in its own process.
// Usage: npx tsx bench/server/reports.ts [--pg] [--seconds 10] [--connections 100] [--rounds 3] [--devices 500]
import autocannon from 'autocannon'
import { report } from '../lib.js'
import { benchServer, enroll, flag, makeReport, median, sized } from './common.js'

const postgres = flag('pg')
const seconds = sized('seconds', 10, 3)
const connections = sized('connections', 100, 100)
const rounds = sized('rounds', 3, 1)
const nDevices = sized('devices', 500, 100)

const srv = await benchServer({ postgres })
try {
  const tokens = await enroll(srv.url, 'standard', nDevices)
  let k = 0
  const rps: number[] = []
  const p99: number[] = []
  const p50: number[] = []
  for (let r = 0; r < rounds; r++) {
    const result = await autocannon({
      url: srv.url,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/api/v1/reports',
          setupRequest: (req) => ({
            ...req,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[k++ % tokens.length]}` },
            body: makeReport(),
          }),
        },
      ],
    })
    const bad = result.non2xx + result.errors + result.timeouts
    rps.push(result.requests.average)
    p50.push(result.latency.p50)
    p99.push(result.latency.p99)
    console.log(
      `round ${r + 1}: ${result.requests.average.toFixed(0)} reports/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms` +
        (bad ? `, ${bad} failed` : ''),
    )
  }
  const db = postgres ? 'PostgreSQL' : 'SQLite'
  const med = median(rps)
  const medP99 = median(p99)
  report({
    measure: `reports/s, ${db}, ${connections} connections`,
    target: '>= 5000/s',
    median: med,
    unit: '/s',
    spread: `min ${Math.min(...rps).toFixed(0)} max ${Math.max(...rps).toFixed(0)}`,
    pass: med >= 5000,
  })
  report({
    measure: `report p99 latency, ${db}`,
    target: '< 50 ms',
    median: medP99,
    unit: 'ms',
    spread: `p50 ${median(p50)} ms`,
    pass: medP99 < 50,
  })
  console.error(
    `reports (${postgres ? 'PostgreSQL' : 'SQLite'}, ${connections} connections): median ${median(rps).toFixed(0)} reports/s, ` +
      `p50 ${median(p50)} ms, p99 ${median(p99)} ms`,
  )
} finally {
  await srv.stop()
}
