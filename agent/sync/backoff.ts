// Exponential backoff with full jitter (AWS style): after n failures wait a random time in [0, min(cap, base·2^n)],
// so a fleet coming back online does not hit the server in lockstep. Pure; `random` is injectable for tests.

export interface BackoffOptions {
  baseMs?: number
  capMs?: number
  /** Lower bound, so a jittered 0 never turns a retry into a hot loop. */
  minMs?: number
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 1000, capMs: 5 * 60_000, minMs: 250 }

export function backoffDelay(failures: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const { baseMs, capMs, minMs } = { ...DEFAULT_BACKOFF, ...opts }
  if (failures <= 0) return 0
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30))
  return Math.max(minMs, Math.round(random() * ceiling))
}

/** Tracks consecutive failures of one activity (policy poll, outbox delivery). */
export class Backoff {
  failures = 0
  /** Earliest time (ms since epoch) the next attempt should be made. */
  notBefore = 0

  constructor(
    private readonly opts: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {}

  fail(now = Date.now()): number {
    this.failures++
    const delay = backoffDelay(this.failures, this.opts, this.random)
    this.notBefore = now + delay
    return delay
  }

  succeed() {
    this.failures = 0
    this.notBefore = 0
  }

  ready(now = Date.now()): boolean {
    return now >= this.notBefore
  }
}

/** A sleep that a shutdown can cut short. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}
