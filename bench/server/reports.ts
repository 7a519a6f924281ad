// Report ingestion: sustained POST /api/v1/reports (~1 KB, 3 findings) against a server in its own process.
// Usage: npx tsx bench/server/reports.ts [--pg] [--seconds 10] [--connections 100] [--rounds 3] [--devices 500]
//   [--pipelining 1] [--rate 5000] [--warmup 2] [--profile DIR] [--binary build/out/interdict-server-linux-x64]
// Besides the client's view (autocannon: reports/s, latency) it prints the CPU each process used: autocannon runs in
// this process on the same 2 cores, so "per server core-second" is the server's own capacity.
import autocannon from 'autocannon'
import { report } from '../lib.js'
import { benchServer, enroll, flag, makeReport, median, sized, withCpu } from './common.js'
import { type PacedResult, paced } from './paced.js'

const postgres = flag('pg')
const seconds = sized('seconds', 10, 3)
const connections = sized('connections', 100, 100)
const rounds = sized('rounds', 3, 1)
const nDevices = sized('devices', 500, 100)
const pipelining = sized('pipelining', 1, 1)
/** The paced round's rate (the target's 5,000/s; --rate to see latency at other loads). */
const TARGET_RATE = sized('rate', 5000, 5000)
/** Seconds the paced round runs at that rate before it starts counting (./paced.ts). */
const WARMUP = sized('warmup', 2, 1)

const srv = await benchServer({ postgres })
try {
  const tokens = await enroll(srv.url, 'standard', nDevices)
  // Header objects made once per device: the generator's per-request work is one report body.
  const headers = tokens.map((t) => ({ 'content-type': 'application/json', authorization: `Bearer ${t}` }))
  let k = 0
  const rps: number[] = []
  const p99: number[] = []
  const p50: number[] = []
  const perCore: number[] = []
  // Closed loop (autocannon: every connection sends as fast as it is answered) measures capacity. The target's p99 is
  // "at 5,000 reports/s sustained": after the closed rounds, a paced generator (./paced.ts) sends exactly that rate,
  // evenly spaced, and its p99 (from each request's scheduled time) is the one judged. (SQLite only: the target is
  // for the embedded default.)
  for (let r = 0; r < rounds; r++) {
    const { result, serverCores, serverMainCores, clientCores } = await withCpu(srv.pid(), () =>
      autocannon({
        url: srv.url,
        connections,
        pipelining,
        duration: seconds,
        requests: [
          {
            method: 'POST',
            path: '/api/v1/reports',
            setupRequest: (req) => {
              req.headers = headers[k++ % headers.length]
              req.body = makeReport()
              return req
            },
          },
        ],
      }),
    )
    const bad = result.non2xx + result.errors + result.timeouts
    const avg = result.requests.average
    rps.push(avg)
    p50.push(result.latency.p50)
    p99.push(result.latency.p99)
    perCore.push(avg / serverCores)
    console.log(
      `round ${r + 1}: ${avg.toFixed(0)} reports/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; ` +
        `server ${serverCores.toFixed(2)} cores (event loop ${serverMainCores.toFixed(2)}, ${(avg / serverCores).toFixed(0)}/core-s), client ${clientCores.toFixed(2)} cores` +
        (bad ? `, ${bad} failed` : ''),
    )
  }
  /** The paced round's result (SQLite only). */
  let o: PacedResult | undefined
  if (!postgres) {
    const { host } = new URL(srv.url)
    const heads = tokens.map(
      (t) =>
        `POST /api/v1/reports HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        `Authorization: Bearer ${t}\r\nContent-Length: `,
    )
    const { result, serverCores, clientCores } = await withCpu(srv.pid(), () =>
      paced({
        url: srv.url,
        rate: TARGET_RATE,
        seconds,
        warmup: WARMUP,
        connections,
        request: (i) => {
          const body = makeReport()
          return Buffer.from(`${heads[i % heads.length]}${Buffer.byteLength(body)}\r\n\r\n${body}`)
        },
      }),
    )
    o = result
    console.log(
      `paced ${TARGET_RATE}/s: ${result.rps.toFixed(0)} reports/s answered, p50 ${result.p50.toFixed(1)} ms, ` +
        `p90 ${result.p90.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, max ${result.max.toFixed(0)} ms; ` +
        `server ${serverCores.toFixed(2)} cores, client ${clientCores.toFixed(2)} cores` +
        (result.bad ? `, ${result.bad} failed` : ''),
    )
  }
  // The standalone binary (Node 22, node:sqlite) is labelled apart from the checkout (`npm start`, this Node).
  const db = (postgres ? 'PostgreSQL' : 'SQLite') + (flag('binary') ? ', server binary' : '')
  const med = median(rps)
  const medP99 = median(p99)
  // The issue's 5,000/s target is for the embedded default; for PostgreSQL it gave reference figures only.
  report({
    measure: `reports/s, ${db}, ${connections} connections`,
    target: postgres ? '-' : '>= 5000/s',
    median: med,
    unit: '/s',
    spread: `min ${Math.min(...rps).toFixed(0)} max ${Math.max(...rps).toFixed(0)}`,
    ...(postgres ? {} : { pass: med >= 5000 }),
  })
  report({
    measure: `report p99 latency at capacity, ${db}`,
    target: '-',
    median: medP99,
    unit: 'ms',
    spread: `p50 ${median(p50)} ms (closed loop, ${connections} conns)`,
  })
  if (o) {
    const sustained = o.rps >= TARGET_RATE * 0.97 && o.bad === 0
    report({
      measure: `report p99 at ${TARGET_RATE}/s paced, ${db}`,
      target: '< 50 ms',
      median: o.p99,
      unit: 'ms',
      spread: `p50 ${o.p50.toFixed(1)} ms, ${o.rps.toFixed(0)}/s answered${o.bad ? `, ${o.bad} failed` : ''}`,
      pass: sustained && o.p99 < 50,
    })
  }
  console.error(
    `reports (${db}, ${connections} connections${pipelining > 1 ? `, pipelining ${pipelining}` : ''}): ` +
      `median ${med.toFixed(0)} reports/s, p50 ${median(p50)} ms, p99 ${medP99} ms, ` +
      `${median(perCore).toFixed(0)} reports per server core-second`,
  )
} finally {
  await srv.stop()
}
