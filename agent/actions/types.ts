// Shared types of the enforcement actions: every action returns an ActionResult that is reported as is, and every
// external command goes through an injectable CommandRunner so tests and dry runs never need the real tools.
import type { Os } from '../collectors/types.js'
import type { Finding, Signal } from '../../policies/match.js'
import type { Action } from '../../policies/schema.js'

export type { Action, Finding, Os, Signal }

/** `done`: something changed; `noop`: already in the wanted state; `refused`: a safety rail or missing evidence. */
export type ActionStatus = 'done' | 'noop' | 'refused' | 'failed'

/** One external command as it ran (or was planned): argv, exit and captured output. */
export interface CommandRecord {
  cmd: string
  args: string[]
  code: number | null
  signal?: string | null
  timedOut?: boolean
  stdout?: string
  stderr?: string
  error?: string
}

export interface ActionResult {
  action: Action
  /** The finding's subject, e.g. `process:4242`, `package:deb:telegram-desktop`. */
  subject: string
  ok: boolean
  status: ActionStatus
  /** What happened, for humans. */
  detail: string
  /** Set when not ok: `refused: ...` for safety refusals, `failed: ...` otherwise. */
  reason?: string
  appId?: string
  policy?: string
  signal?: Signal
  /** ISO time the action finished. */
  at: string
  // Evidence, by action.
  pid?: number
  /** kill: every pid signalled (root last) and the signals used. */
  killed?: number[]
  signals?: string[]
  /** kill: descendants left alone by safety rails, with the reason. */
  spared?: { pid: number; reason: string }[]
  path?: string
  sha256?: string
  quarantineId?: string
  /** uninstall / block-network / notify: the commands run, with exit codes and output. */
  commands?: CommandRecord[]
  domains?: string[]
  cidrs?: string[]
  hostsPath?: string
  firewall?: string
  message?: string
}

export interface RunOptions {
  /** Kill the command after this long (default 60 s). */
  timeoutMs?: number
  /** Written to stdin, then stdin is closed. */
  input?: string
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export interface RunResult {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
  timedOut: boolean
  /** Spawn failure (e.g. ENOENT: the tool is not installed). */
  error?: string
}

/** Runs one command without a shell (argv passed as is). Never rejects: failures are in the result. */
export type CommandRunner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>

export interface ResultBase {
  action: Action
  subject: string
  appId?: string
  policy?: string
  signal?: Signal
}

export function baseOf(action: Action, finding: Finding): ResultBase {
  return { action, subject: finding.subject, appId: finding.appId, policy: finding.policy, signal: finding.signal }
}

type Extra = Omit<Partial<ActionResult>, 'action' | 'subject' | 'ok' | 'status' | 'detail' | 'reason' | 'at'>

export function done(base: ResultBase, detail: string, extra: Extra = {}): ActionResult {
  return { ...base, ok: true, status: 'done', detail, ...extra, at: new Date().toISOString() }
}

export function noop(base: ResultBase, detail: string, extra: Extra = {}): ActionResult {
  return { ...base, ok: true, status: 'noop', detail, ...extra, at: new Date().toISOString() }
}

export function refused(base: ResultBase, why: string, extra: Extra = {}): ActionResult {
  const reason = `refused: ${why}`
  return { ...base, ok: false, status: 'refused', detail: reason, reason, ...extra, at: new Date().toISOString() }
}

export function failed(base: ResultBase, why: string, extra: Extra = {}): ActionResult {
  const reason = `failed: ${why}`
  return { ...base, ok: false, status: 'failed', detail: reason, reason, ...extra, at: new Date().toISOString() }
}

export function toRecord(cmd: string, args: readonly string[], r: RunResult): CommandRecord {
  return {
    cmd,
    args: [...args],
    code: r.code,
    signal: r.signal,
    timedOut: r.timedOut || undefined,
    stdout: r.stdout || undefined,
    stderr: r.stderr || undefined,
    error: r.error,
  }
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
