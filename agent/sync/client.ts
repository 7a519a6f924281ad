// The device side of the protocol (DESIGN §4): deliver outbox items, and the policy long-poll loop.
import type { AxiosInstance } from 'axios'
import { Backoff, type BackoffOptions, sleep } from './backoff.js'
import { errorMessage } from './fsutil.js'
import { describeNetError } from './http.js'
import type { OutboxItem, SendOutcome } from './outbox.js'
import type { OfferResult, PolicyStore } from './policy-store.js'

export const POLICY_ROUTE = '/api/v1/policy'

export interface DeliveryState {
  lastError?: string
  /** The server refused the device token (revoked or deleted device). */
  authRejected?: boolean
  lastDeliveredAt?: string
}

/** POST one outbox item; maps the answer to what the outbox does with it. */
export async function sendItem(
  client: AxiosInstance,
  item: OutboxItem,
  state: DeliveryState = {},
): Promise<SendOutcome> {
  let status: number
  let data: unknown
  try {
    const res = await client.post(item.route, item.body)
    status = res.status
    data = res.data
  } catch (err) {
    state.lastError = describeNetError(err, client.defaults.baseURL ?? '')
    return 'retry'
  }
  // 202 is the protocol's ack; 409 means the server already has this reportId.
  if ((status >= 200 && status < 300) || status === 409) {
    state.lastError = undefined
    state.authRejected = false
    state.lastDeliveredAt = new Date().toISOString()
    return 'delivered'
  }
  const msg = `${item.route} answered ${status}: ${serverMessage(data)}`
  state.lastError = msg
  if (status === 401 || status === 403) {
    state.authRejected = true
    return 'retry'
  }
  // The server will never take this body: set it aside rather than block every later item behind it.
  if (status === 400 || status === 413 || status === 422) return 'dead'
  return 'retry'
}

export function serverMessage(data: unknown): string {
  if (data && typeof data === 'object' && 'message' in data) return String((data as { message: unknown }).message)
  if (typeof data === 'string') return data.slice(0, 200)
  return 'no message'
}

export interface PolicySyncOptions {
  client: AxiosInstance
  store: PolicyStore
  /** Long-poll seconds (the server caps it at 60). */
  waitSec?: number
  backoff?: BackoffOptions
  random?: () => number
  /** Called for every answer that carried a bundle (accepted, unchanged or rejected). */
  onResult(r: OfferResult): void | Promise<void>
  onError?(message: string): void
}

export interface SyncStatus {
  lastSyncAt?: string
  lastError?: string
  authRejected?: boolean
  polls: number
}

/** One poll (pure protocol, no loop): 'bundle', 'not-modified', 'no-policy', or an error. */
export async function pollPolicy(
  client: AxiosInstance,
  etag: string | undefined,
  waitSec: number,
  signal?: AbortSignal,
): Promise<
  | { kind: 'bundle'; bundle: unknown; etag?: string }
  | { kind: 'not-modified' }
  | { kind: 'no-policy' }
  | { kind: 'error'; message: string; auth?: boolean }
> {
  try {
    const res = await client.get(POLICY_ROUTE, {
      params: waitSec > 0 ? { wait: waitSec } : {},
      headers: etag ? { 'if-none-match': etag } : {},
      // The server holds the request up to `wait` seconds; allow for that plus a slow network.
      timeout: (waitSec + 20) * 1000,
      ...(signal ? { signal } : {}),
    })
    if (res.status === 304) return { kind: 'not-modified' }
    if (res.status === 200) {
      const tag = res.headers.etag
      return { kind: 'bundle', bundle: res.data, ...(typeof tag === 'string' ? { etag: tag } : {}) }
    }
    if (res.status === 404) return { kind: 'no-policy' }
    const auth = res.status === 401 || res.status === 403
    return { kind: 'error', message: `policy poll answered ${res.status}: ${serverMessage(res.data)}`, auth }
  } catch (err) {
    return { kind: 'error', message: describeNetError(err, client.defaults.baseURL ?? '') }
  }
}

/**
 * The long-poll loop: ask for a bundle newer than our ETag; the server answers at once on a push, or 304 after
 * `wait`. Network errors back off with jitter (capped at 5 min).
 */
export class PolicySync {
  readonly status: SyncStatus = { polls: 0 }
  private readonly backoff: Backoff
  private abort = new AbortController()
  private loop: Promise<void> | undefined
  private endFirstRound!: () => void
  /** Settles once the first round is over, whatever it found (or when stopped before). */
  readonly firstRound = new Promise<void>((resolve) => {
    this.endFirstRound = resolve
  })

  constructor(private readonly opts: PolicySyncOptions) {
    this.backoff = new Backoff(opts.backoff, opts.random)
  }

  /** One round: poll, hand the answer to the store. Returns how long to wait before the next round. */
  async once(waitSec = this.opts.waitSec ?? 55): Promise<number> {
    const { store } = this.opts
    const r = await pollPolicy(this.opts.client, store.metadata.etag, waitSec, this.abort.signal)
    this.status.polls++
    if (this.abort.signal.aborted) return 0
    if (r.kind === 'error') {
      this.status.lastError = r.message
      this.status.authRejected = r.auth ?? false
      this.opts.onError?.(r.message)
      return this.backoff.fail()
    }
    this.backoff.succeed()
    this.status.lastSyncAt = new Date().toISOString()
    this.status.lastError = undefined
    this.status.authRejected = false
    if (r.kind === 'not-modified') return 0
    // No bundle for this class yet: the server did not long-poll, so do not spin.
    if (r.kind === 'no-policy') return Math.max(5, waitSec) * 1000
    let result: OfferResult
    try {
      result = await store.offer(r.bundle, r.etag)
    } catch (err) {
      // The bundle was good but could not be persisted: enforce it anyway (in memory) and retry soon.
      this.status.lastError = `cannot store the bundle: ${errorMessage(err)}`
      this.opts.onError?.(this.status.lastError)
      return this.backoff.fail()
    }
    await this.opts.onResult(result)
    // A server that ignores If-None-Match would answer 200 at once forever: pace the loop.
    return result.status === 'accepted' ? 0 : r.etag ? 0 : 5000
  }

  start() {
    if (this.loop) return
    this.abort = new AbortController()
    const signal = this.abort.signal
    this.loop = (async () => {
      // The first round does not wait: it confirms the server is reachable (status, health) right at start.
      let first = true
      while (!signal.aborted) {
        let delay: number
        try {
          delay = await this.once(first ? 0 : undefined)
          first = false
        } catch (err) {
          this.opts.onError?.(errorMessage(err))
          delay = this.backoff.fail()
        }
        this.endFirstRound()
        if (delay > 0) await sleep(delay, signal)
      }
    })()
  }

  async stop() {
    this.abort.abort()
    await this.loop?.catch(() => {})
    this.loop = undefined
    this.endFirstRound()
  }
}
