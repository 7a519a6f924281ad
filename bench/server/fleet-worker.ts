// One worker thread of the simulated fleet (bench/server/fleet.ts): a slice of the agents, each a few timers and
// requests on a shared keep-alive pool, not a process. Per agent: a first policy poll without waiting (as the real
// agent's first sync), then a long-poll loop with If-None-Match; a report and a heartbeat every `periodMs` at a random
// phase. Latencies go back to the main thread at the end.
import http from 'node:http'
import { parentPort, workerData } from 'node:worker_threads'
import { makeReport } from './common.js'

interface Input {
  base: string
  tokens: string[]
  durationMs: number
  periodMs: number
  waitSec: number
  /** Agents come online at random times over this window (a fleet does not boot in one millisecond). */
  rampMs: number
}

const { base, tokens, durationMs, periodMs, waitSec, rampMs } = workerData as Input
const url = new URL(base)
// One pool for the slice: parked long-polls hold a socket each, reports and heartbeats reuse idle ones.
const pool = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, keepAliveMsecs: 30_000 })
const lat = { poll: [] as number[], report: [] as number[], heartbeat: [] as number[], push: [] as number[] }
/** The same, minus requests made within 5 s after the push (when every agent re-polls at once). */
const steady = { poll: [] as number[], report: [] as number[], heartbeat: [] as number[] }
const inBurst = (start: number) => pushAt > 0 && start >= pushAt - 100 && start < pushAt + 5000
const record = (kind: keyof typeof steady, startedAt: number, ms: number) => {
  lat[kind].push(ms)
  if (!inBurst(startedAt)) steady[kind].push(ms)
}
const errors: Record<string, number> = {}
const errorSamples: string[] = []
let stopping = false
let pushAt = 0

function fail(kind: string, msg: string) {
  if (stopping) return
  errors[kind] = (errors[kind] ?? 0) + 1
  if (errorSamples.length < 5) errorSamples.push(`${kind}: ${msg}`)
}

function send(
  method: string,
  path: string,
  token: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; etag?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent: pool,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      },
      (res) => {
        res.resume()
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, ...(res.headers.etag ? { etag: String(res.headers.etag) } : {}) }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function pollLoop(token: string) {
  let etag: string | undefined
  let first = true
  while (!stopping) {
    const t0 = performance.now()
    const at = Date.now()
    try {
      const r = await send(
        'GET',
        first ? '/api/v1/policy' : `/api/v1/policy?wait=${waitSec}`,
        token,
        undefined,
        etag ? { 'if-none-match': etag } : {},
      )
      if (first) record('poll', at, performance.now() - t0)
      first = false
      if (r.status === 200) {
        if (etag && pushAt) lat.push.push(Date.now() - pushAt)
        etag = r.etag
      } else if (r.status !== 304) {
        fail('poll', `status ${r.status}`)
        await sleep(1000)
      }
    } catch (err) {
      fail('poll', (err as Error).message)
      await sleep(1000 + Math.random() * 4000)
    }
  }
}

async function every(kind: 'report' | 'heartbeat', token: string, make: () => string, path: string) {
  await sleep(Math.random() * periodMs)
  while (!stopping) {
    const t0 = performance.now()
    const at = Date.now()
    try {
      const r = await send('POST', path, token, make())
      if (r.status === 202 || r.status === 200) record(kind, at, performance.now() - t0)
      else fail(kind, `status ${r.status}`)
    } catch (err) {
      fail(kind, (err as Error).message)
    }
    await sleep(periodMs - (performance.now() - t0))
  }
}

const heartbeat = JSON.stringify({
  bundleVersion: 1,
  agentVersion: '0.1.0',
  health: { status: 'ok', 'agent.rssMB': 42 },
})

parentPort!.on('message', (m: { pushAt?: number }) => {
  if (m.pushAt) pushAt = m.pushAt
})

const loops = tokens.map(async (t) => {
  await sleep(Math.random() * rampMs)
  await Promise.all([
    pollLoop(t),
    every('report', t, makeReport, '/api/v1/reports'),
    every('heartbeat', t, () => heartbeat, '/api/v1/heartbeat'),
  ])
})
parentPort!.postMessage({ started: tokens.length })
await sleep(durationMs)
stopping = true
// Parked long-polls would hold the worker for up to `waitSec`: cut them.
pool.destroy()
await Promise.race([Promise.allSettled(loops), sleep(periodMs + 2000)])
parentPort!.postMessage({ lat, steady, errors, errorSamples })
