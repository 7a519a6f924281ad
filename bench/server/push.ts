// Push latency: N agents long-poll GET /api/v1/policy?wait=60; time from the push request until the last of them has
// its new bundle. Usage: npx tsx bench/server/push.ts [--waiters 5000] [--rounds 3] [--pg]
import http from 'node:http'
import { report } from '../lib.js'
import { api, benchServer, enroll, flag, median, sized } from './common.js'

const waiters = sized('waiters', 5000, 5000)
const rounds = sized('rounds', 3, 1)
const srv = await benchServer({ postgres: flag('pg') })
// One socket per waiting agent, as in the field.
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY })

function longPoll(url: string, token: string, etag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      { agent, headers: { authorization: `Bearer ${token}`, 'if-none-match': etag } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
  })
}
try {
  const tokens = await enroll(srv.url, 'military', Math.min(waiters, sized('devices', 500, 200)))
  const times: number[] = []
  let missed = 0
  for (let r = 0; r < rounds; r++) {
    const cur = await fetch(`${srv.url}/api/v1/policy`, { headers: { authorization: `Bearer ${tokens[0]}` } })
    const etag = cur.headers.get('etag')!
    await cur.text()
    let answered = 0
    let last = 0
    const all = Array.from({ length: waiters }, (_, i) =>
      longPoll(`${srv.url}/api/v1/policy?wait=60`, tokens[i % tokens.length]!, etag).then((status) => {
        if (status === 200) answered++
        last = performance.now()
      }),
    )
    // Let every request reach the server and park.
    await new Promise((resolve) => setTimeout(resolve, Math.max(2000, waiters / 2)))
    const t0 = performance.now()
    await api(srv.url, 'POST', '/api/v1/admin/policies', {
      policies: [
        {
          id: `bench-${r}`,
          title: `bench round ${r}`,
          apps: [{ id: `app-${r}`, name: `App ${r}`, match: { processNames: [`bench-app-${r}`] } }],
          assignments: { military: { actions: ['report', 'kill'] } },
        },
      ],
    })
    await Promise.all(all)
    const ms = last - t0
    times.push(ms)
    missed += waiters - answered
    console.log(
      `round ${r + 1}: ${answered}/${waiters} waiting agents got the new bundle within ${ms.toFixed(0)} ms of the push`,
    )
  }
  const med = median(times)
  report({
    measure: `push to ${waiters} long-poll waiters, ${flag('pg') ? 'PostgreSQL' : 'SQLite'}`,
    target: '<= 2000 ms',
    median: med,
    unit: 'ms',
    spread: `min ${Math.min(...times).toFixed(0)} max ${Math.max(...times).toFixed(0)} ms`,
    pass: med <= 2000 && missed === 0,
  })
  console.error(
    `push to ${waiters} long-poll waiters (${flag('pg') ? 'PostgreSQL' : 'SQLite'}): median ${median(times).toFixed(0)} ms`,
  )
} finally {
  agent.destroy()
  await srv.stop()
}
