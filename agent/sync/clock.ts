// Clock skew between this device and the server, from the HTTP `Date` header of every server answer (RFC 9110: the
// origin's clock, whole seconds). Bundle checks tolerate ±1 day (policies/sign.ts); past that the agent warns loudly
// in its health, `interdict-agent status` and the server's device detail, because bundles may then be refused as
// "not yet valid" or expire early.

/** Beyond this the clock is wrong enough to matter (the bundle issue-time tolerance). */
export const SKEW_WARN_SEC = 86_400

/**
 * Seconds this device's clock is ahead of the server's (negative: behind), or undefined without a usable header
 * (pure). The header is truncated to the second, so the server's time is taken as the middle of that second.
 */
export function skewFromDate(date: unknown, agentNowMs: number): number | undefined {
  if (typeof date !== 'string') return undefined
  const server = Date.parse(date)
  if (!Number.isFinite(server)) return undefined
  return Math.round((agentNowMs - (server + 500)) / 1000)
}

/** A human sentence for a skew beyond the tolerance, undefined within it (pure). */
export function skewWarning(sec: number | undefined): string | undefined {
  if (sec === undefined || Math.abs(sec) <= SKEW_WARN_SEC) return undefined
  const hours = Math.abs(sec) / 3600
  const amount = hours >= 48 ? `${(hours / 24).toFixed(1)} days` : `${hours.toFixed(1)} hours`
  return `clock is ${amount} ${sec > 0 ? 'ahead of' : 'behind'} the server (more than the 1 day policy checks tolerate)`
}

/** The latest measurement; `observe` is called for every server answer. */
export class ClockSkew {
  sec: number | undefined

  /** The warning sentence while the skew is beyond the tolerance. */
  get warning(): string | undefined {
    return skewWarning(this.sec)
  }

  observe(dateHeader: unknown, agentNowMs: number) {
    const s = skewFromDate(dateHeader, agentNowMs)
    if (s === undefined) return
    this.sec = s
  }
}
