// Report ingestion: sustained POST /api/v1/reports (~1 KB, 3 findings) against a server in its own process.
// Usage: npx tsx bench/server/reports.ts [--pg] [--seconds 10] [--connections 100] [--rounds 3] [--devices 500]
import autocannon from 'autocannon'
import { arg, benchServer, enroll, flag, makeReport, median } from './common.js'

const postgres = flag('pg')
const seconds = arg('seconds', 10)
const connections = arg('connections', 100)
const rounds = arg('rounds', 3)
const nDevices = arg('devices', 500)

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
  console.log(
    `reports (${postgres ? 'PostgreSQL' : 'SQLite'}, ${connections} connections): median ${median(rps).toFixed(0)} reports/s, ` +
      `p50 ${median(p50)} ms, p99 ${median(p99)} ms`,
  )
} finally {
  await srv.stop()
}
