// `interdict-agent status`: what this device is enrolled as, which bundle it enforces, and how the daemon is doing
// (from status.json, which the daemon rewrites at every heartbeat and scan). Exit 0 healthy, 1 degraded, 3 not
// enrolled.
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import type { DaemonStatus } from '../daemon.js'
import { skewWarning } from '../sync/clock.js'
import { loadConfig, NotEnrolled } from '../sync/config.js'
import { errorMessage } from '../sync/fsutil.js'
import { Outbox } from '../sync/outbox.js'
import { resolveStateDir, statePaths } from '../sync/paths.js'
import { PolicyStore } from '../sync/policy-store.js'

export interface StatusReport {
  enrolled: boolean
  stateDir: string
  server?: string
  deviceId?: string
  class?: string
  bundle?: { version: number; issuedAt: string; expiresAt: string; expired: boolean; apps: number }
  bundleProblem?: string
  lastRejection?: { at: string; reason: string; message: string }
  daemon?: { running: boolean; pid: number; updatedAt: string }
  lastSyncAt?: string
  syncError?: string
  lastScan?: DaemonStatus['lastScan']
  outbox?: { items: number; bytes: number }
  health?: DaemonStatus['health']
  /** Seconds this device's clock is ahead of the server (negative: behind), as the daemon last measured. */
  clockSkewSec?: number
  /** Set when the skew is beyond the ±1 day the policy checks tolerate. */
  clockWarning?: string
  error?: string
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function collectStatus(stateDir: string): Promise<StatusReport> {
  const out: StatusReport = { enrolled: false, stateDir }
  let config: Awaited<ReturnType<typeof loadConfig>>
  try {
    config = await loadConfig(stateDir)
  } catch (err) {
    if (!(err instanceof NotEnrolled)) out.error = errorMessage(err)
    return out
  }
  Object.assign(out, { enrolled: true, server: config.server, deviceId: config.deviceId, class: config.class })
  const store = new PolicyStore(stateDir, { publicKeyPem: config.policyKey, class: config.class })
  const b = await store.load()
  if (b) {
    out.bundle = {
      version: b.payload.version,
      issuedAt: b.payload.issuedAt,
      expiresAt: b.payload.expiresAt,
      expired: store.expiredNow(),
      apps: b.payload.apps.length,
    }
  } else out.bundleProblem = store.loadProblem ?? 'no policy bundle received yet'
  const rej = store.metadata.lastRejection
  if (rej) out.lastRejection = { at: rej.at, reason: rej.reason, message: rej.message }
  try {
    const box = await Outbox.open(statePaths(stateDir).outbox)
    out.outbox = { items: box.size.items, bytes: box.size.bytes }
  } catch {}
  try {
    const s = JSON.parse(await readFile(statePaths(stateDir).status, 'utf8')) as DaemonStatus
    out.daemon = { running: alive(s.pid) && s.pid !== process.pid, pid: s.pid, updatedAt: s.updatedAt }
    if (s.lastSyncAt) out.lastSyncAt = s.lastSyncAt
    if (s.syncError) out.syncError = s.syncError
    if (s.lastScan) out.lastScan = s.lastScan
    out.health = s.health
    const skew = s.health?.clockSkewSec
    if (typeof skew === 'number') {
      out.clockSkewSec = skew
      const w = skewWarning(skew)
      if (w) out.clockWarning = w
    }
  } catch {}
  return out
}

export function registerStatus(program: Command) {
  program
    .command('status')
    .description('show enrollment, policy bundle, sync, outbox and health of this agent')
    .option('--state-dir <dir>', 'state directory (default: per-OS system location, or INTERDICT_STATE_DIR)')
    .option('--json', 'print the status as JSON')
    .action(async (opts: { stateDir?: string; json?: boolean }) => {
      const s = await collectStatus(resolveStateDir(opts.stateDir))
      const healthy = s.enrolled && !!s.bundle && !s.bundle.expired && !!s.daemon?.running
      process.exitCode = !s.enrolled ? 3 : healthy ? 0 : 1
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`)
        return
      }
      const lines: string[] = []
      if (!s.enrolled) {
        lines.push(`Not enrolled (state dir ${s.stateDir})${s.error ? `: ${s.error}` : ''}`)
        lines.push('Run: interdict-agent enroll --server URL --secret SECRET')
        process.stdout.write(`${lines.join('\n')}\n`)
        return
      }
      lines.push(`Device:    ${s.deviceId} (class ${s.class})`)
      lines.push(`Server:    ${s.server}`)
      lines.push(`State dir: ${s.stateDir}`)
      if (s.bundle) {
        const exp = s.bundle.expired ? ' EXPIRED (still enforced; the server has not been reached)' : ''
        lines.push(
          `Policy:    bundle v${s.bundle.version}, ${s.bundle.apps} app rules, expires ${s.bundle.expiresAt}${exp}`,
        )
      } else lines.push(`Policy:    none (${s.bundleProblem})`)
      if (s.lastRejection) {
        lines.push(`Rejected:  ${s.lastRejection.at} ${s.lastRejection.reason}: ${s.lastRejection.message}`)
      }
      lines.push(
        s.daemon
          ? `Daemon:    ${s.daemon.running ? `running (pid ${s.daemon.pid})` : 'not running'}, status at ${s.daemon.updatedAt}`
          : 'Daemon:    never ran',
      )
      lines.push(`Last sync: ${s.lastSyncAt ?? 'never'}${s.syncError ? ` (now failing: ${s.syncError})` : ''}`)
      if (s.lastScan) {
        lines.push(
          `Last scan: ${s.lastScan.at}, ${s.lastScan.ms} ms, ${s.lastScan.rows} items, ${s.lastScan.findings} findings` +
            (s.lastScan.errors ? `, ${s.lastScan.errors} collector errors` : ''),
        )
      } else lines.push('Last scan: never')
      if (s.outbox) lines.push(`Outbox:    ${s.outbox.items} queued (${Math.round(s.outbox.bytes / 1024)} KiB)`)
      if (s.health) lines.push(`Health:    ${s.health.status ?? '?'}`)
      if (s.clockWarning) lines.push(`WARNING:   ${s.clockWarning}; fix the time on this device`)
      process.stdout.write(`${lines.join('\n')}\n`)
    })
}
