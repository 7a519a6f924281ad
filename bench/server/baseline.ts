// Calibration: what this machine serves with no Interdict logic at all (bench/server/baseline-server.ts: bare Fastify,
// report schema, one SQLite insert per POST; a constant GET), under the same load generator and connections as
// bench/server/reports.ts and polls.ts. The reference figures were measured this way on its machine (~13,500
// POSTs/s, ~41,000 GETs/s); this VM's speed varies by day, so the real server's rows read best against these.
// Usage: npx tsx bench/server/baseline.ts [--seconds 10] [--rounds 3] [--connections 100]
import { spawn } from 'node:child_process'
import autocannon from 'autocannon'
import { report } from '../lib.js'
import { makeReport, median, sized, withCpu } from './common.js'

const seconds = sized('seconds', 10, 3)
const rounds = sized('rounds', 3, 1)
const connections = sized('connections', 100, 100)

const child = spawn(process.execPath, ['--import', 'tsx', new URL('./baseline-server.ts', import.meta.url).pathname], {
  stdio: ['ignore', 'pipe', 'inherit'],
})
try {
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /"address":"([^"]+)"/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.once('exit', (code) => reject(new Error(`baseline server exited ${code}`)))
  })
  for (const [what, method, path, reference] of [
    ['POST + report schema + 1 SQLite insert', 'POST', '/r', '13,500'],
    ['GET', 'GET', '/p', '41,000'],
  ] as const) {
    const rps: number[] = []
    const cores: string[] = []
    for (let r = 0; r < rounds; r++) {
      const { result, serverCores, clientCores } = await withCpu(child.pid as number, () =>
        autocannon({
          url: url + path,
          connections,
          duration: seconds,
          requests: [
            method === 'POST'
              ? {
                  method,
                  setupRequest: (req) => ({
                    ...req,
                    headers: { 'content-type': 'application/json' },
                    body: makeReport(),
                  }),
                }
              : { method },
          ],
        }),
      )
      cores.push(`server ${serverCores.toFixed(2)}, client ${clientCores.toFixed(2)} cores`)
      if (result.non2xx || result.errors) throw new Error(`${what}: ${result.non2xx} non-2xx, ${result.errors} errors`)
      rps.push(result.requests.average)
    }
    report({
      measure: `baseline: bare Fastify ${what}, ${connections} conns`,
      target: '-',
      median: median(rps),
      unit: '/s',
      spread: `min ${Math.min(...rps).toFixed(0)}; issue's machine ~${reference}/s`,
    })
    console.error(`baseline ${what}: ${rps.map((x) => x.toFixed(0)).join(', ')}/s; ${cores.join('; ')}`)
  }
} finally {
  child.kill()
}
