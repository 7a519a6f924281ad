// Helpers shared by the action tests: findings built from real rows, banned copies of /bin/sleep.
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Finding } from '../../policies/match.js'
import type { Row } from '../../agent/collectors/types.js'
import type { Action, Signal } from '../../agent/actions/types.js'

export const root = typeof process.getuid === 'function' && process.getuid() === 0
export const linux = process.platform === 'linux'

export function finding(row: Row, actions: Action[], extra: Partial<Finding> = {}): Finding {
  const subject =
    row.kind === 'process'
      ? `process:${row.pid}`
      : row.kind === 'package'
        ? `package:${row.manager}:${row.name}`
        : row.kind
  return {
    appId: 'banned',
    appName: 'Banned App',
    policy: 'test-policy',
    signal: 'process-name' as Signal,
    specificity: 20,
    matched: 'banned',
    subject,
    actions,
    row,
    ...extra,
  }
}

/** A copy of /bin/sleep under a banned name, started; returns the child. */
export function startBanned(dir: string, name: string, seconds = 60): ChildProcess {
  const exe = join(dir, name)
  copyFileSync('/bin/sleep', exe)
  const child = spawn(exe, [String(seconds)], { stdio: 'ignore', detached: true })
  child.unref()
  return child
}
