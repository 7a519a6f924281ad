// Unchanged-policy polls: GET /api/v1/policy with If-None-Match of the current bundle, answered 304 from memory.
// Usage: npx tsx bench/server/polls.ts [--seconds 10] [--connections 100] [--rounds 3] [--devices 50]
//   [--pipelining 1] [--profile DIR]
// Prints the client's view (autocannon) and the CPU each process used: the generator shares the 2 cores, so
// "per server core-second" is the server's own capacity.
import autocannon from 'autocannon'
import { report } from '../lib.js'
import { api, benchServer, enroll, median, sized, withCpu } from './common.js'

const seconds = sized('seconds', 10, 3)
const connections = sized('connections', 100, 100)
const rounds = sized('rounds', 3, 1)
const pipelining = sized('pipelining', 1, 1)
const srv = await benchServer()
try {
  const tokens = await enroll(srv.url, 'standard', sized('devices', 50, 50))
  const first = await fetch(`${srv.url}/api/v1/policy`, { headers: { authorization: `Bearer ${tokens[0]}` } })
  const etag = first.headers.get('etag')!
  await first.text()
  await api(srv.url, 'GET', '/api/v1/admin/whoami')
  const rps: number[] = []
  const p99: number[] = []
  const perCore: number[] = []
  for (let r = 0; r < rounds; r++) {
    const {
      result: res,
      serverCores,
      serverMainCores,
      clientCores,
    } = await withCpu(srv.pid(), () =>
      autocannon({
        url: srv.url,
        connections,
        pipelining,
        duration: seconds,
        // Static requests cycling over devices (no per-request callback: the generator must not be the bottleneck).
        requests: tokens.map((t) => ({
          method: 'GET',
          path: '/api/v1/policy',
          headers: { authorization: `Bearer ${t}`, 'if-none-match': etag },
        })),
      }),
    )
    const not304 = res.requests.total - (res.statusCodeStats['304']?.count ?? 0)
    const avg = res.requests.average
    rps.push(avg)
    p99.push(res.latency.p99)
    perCore.push(avg / serverCores)
    console.log(
      `round ${r + 1}: ${avg.toFixed(0)} polls/s (304), p99 ${res.latency.p99} ms; server ${serverCores.toFixed(2)} cores ` +
        `(event loop ${serverMainCores.toFixed(2)}, ${(avg / serverCores).toFixed(0)}/core-s), client ${clientCores.toFixed(2)} cores${not304 ? `, ${not304} not 304` : ''}`,
    )
  }
  const med = median(rps)
  report({
    measure: `unchanged-policy polls (304)/s, ${connections} conns`,
    target: '>= 20000/s',
    median: med,
    unit: '/s',
    spread: `min ${Math.min(...rps).toFixed(0)} p99 ${median(p99)} ms`,
    pass: med >= 20_000,
  })
  console.error(
    `unchanged polls: median ${med.toFixed(0)}/s, p99 ${median(p99)} ms (${connections} connections` +
      `${pipelining > 1 ? `, pipelining ${pipelining}` : ''}), ${median(perCore).toFixed(0)} polls per server core-second`,
  )
} finally {
  await srv.stop()
}
