// A constant-rate load generator: requests go out on a fixed schedule (i / rate seconds after the start), each on a
// free keep-alive connection, and latency is counted from the scheduled time, so time spent waiting for a connection
// counts against the server (no coordinated omission, as in wrk2). autocannon's rate limit sends each connection's
// quota for the second back to back and then pauses, which is a closed loop in bursts, not a sustained rate.
// Raw sockets and pre-built requests keep it cheap: it shares the 2 cores with the server. Like wrk2's calibration
// period, the first `warmup` seconds go out at the same rate but are not counted: at a cold start both processes are
// still compiling their hot paths, and the generator itself sent up to ~110 ms late in its first half second here.
import { connect, type Socket } from 'node:net'
import { percentile } from '../lib.js'

export interface PacedResult {
  /** Counted requests (after the warm-up) answered 2xx, and the rest (unanswered ones included). */
  ok: number
  bad: number
  /** Counted requests per second answered over the counted part of the run. */
  rps: number
  p50: number
  p90: number
  p99: number
  max: number
}

interface Conn {
  socket: Socket
  buf: Buffer
  /** Scheduled time of the request in flight; undefined when idle. */
  due: number | undefined
}

/**
 * Send `rate` requests/s for `warmup` + `seconds` over `connections` sockets and measure the last `seconds`;
 * `request(i)` returns the i-th raw HTTP request.
 */
export async function paced(opts: {
  url: string
  rate: number
  seconds: number
  warmup: number
  connections: number
  request: (i: number) => Buffer
}): Promise<PacedResult> {
  const { hostname, port } = new URL(opts.url)
  const latencies: number[] = []
  let ok = 0
  const waiting: number[] = [] // scheduled times of requests no connection was free for
  const idle: Conn[] = []
  let issued = 0
  /** Requests due before this time are the warm-up's. */
  let counted = Number.POSITIVE_INFINITY
  let finish: (() => void) | undefined

  const send = (c: Conn, due: number) => {
    c.due = due
    c.socket.write(opts.request(issued++))
  }
  let answered = 0
  const onDone = (c: Conn, status: number) => {
    const due = c.due as number
    answered++
    if (due >= counted) {
      latencies.push(performance.now() - due)
      if (status >= 200 && status < 300) ok++
    }
    c.due = undefined
    const next = waiting.shift()
    if (next !== undefined) send(c, next)
    else idle.push(c)
    if (finish && answered === issued) finish()
  }
  // One response at a time per connection: status line, headers up to CRLFCRLF, then Content-Length bytes.
  const onData = (c: Conn, chunk: Buffer) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, chunk]) : chunk
    for (;;) {
      const end = c.buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = c.buf.subarray(0, end).toString('latin1')
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
      if (c.buf.length < end + 4 + len) return
      c.buf = c.buf.subarray(end + 4 + len)
      onDone(c, Number(head.slice(9, 12)))
    }
  }

  const conns = await Promise.all(
    Array.from(
      { length: opts.connections },
      () =>
        new Promise<Conn>((resolve, reject) => {
          const socket = connect({ host: hostname, port: Number(port), noDelay: true })
          const c: Conn = { socket, buf: Buffer.alloc(0), due: undefined }
          socket.once('connect', () => resolve(c))
          socket.once('error', reject)
          socket.on('data', (d) => onData(c, d))
        }),
    ),
  )
  idle.push(...conns)

  const start = performance.now()
  counted = start + opts.warmup * 1000
  const total = Math.round(opts.rate * (opts.warmup + opts.seconds))
  const measured = total - Math.round(opts.rate * opts.warmup)
  let scheduled = 0
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now()
      const dueCount = Math.min(total, Math.floor(((now - start) * opts.rate) / 1000))
      for (; scheduled < dueCount; scheduled++) {
        const due = start + (scheduled * 1000) / opts.rate
        const c = idle.pop()
        if (c) send(c, due)
        else waiting.push(due)
      }
      if (scheduled >= total) {
        clearInterval(tick)
        resolve()
      }
    }, 1)
  })
  // Let what is in flight finish (bounded).
  if (answered < total) {
    await new Promise<void>((resolve) => {
      finish = resolve
      setTimeout(resolve, 30_000).unref()
    })
  }
  const elapsed = (performance.now() - counted) / 1000
  for (const c of conns) c.socket.destroy()
  return {
    ok,
    bad: measured - ok, // unanswered ones included
    rps: ok / elapsed,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
  }
}
