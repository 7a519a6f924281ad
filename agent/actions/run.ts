// The default CommandRunner: spawn without a shell, bounded output, hard timeout. Never rejects, so an action can
// always report what the command did (or that the tool is missing).
import { spawn } from 'node:child_process'
import type { CommandRunner, RunOptions, RunResult } from './types.js'

/** Output kept per stream: enough for a package manager's error, bounded so a chatty tool can't bloat reports. */
const MAX_OUTPUT = 64 * 1024

export const runCommand: CommandRunner = (cmd, args, opts: RunOptions = {}) =>
  new Promise<RunResult>((resolve) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    let settled = false
    const finish = (r: Omit<RunResult, 'stdout' | 'stderr' | 'timedOut'>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ ...r, stdout, stderr, timedOut })
    }
    let child: ReturnType<typeof spawn>
    try {
      child = spawn(cmd, [...args], {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        windowsHide: true,
      })
    } catch (err) {
      resolve({ code: null, signal: null, stdout, stderr, timedOut, error: (err as Error).message })
      return
    }
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 60_000)
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d.slice(0, MAX_OUTPUT - stdout.length)
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d.slice(0, MAX_OUTPUT - stderr.length)
    })
    child.on('error', (err) => finish({ code: null, signal: null, error: err.message }))
    child.on('close', (code, signal) => finish({ code, signal }))
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}) // the tool may exit before reading everything; that's its exit code's story
      child.stdin.end(opts.input)
    }
  })

/** Whether an executable is on PATH (no shell, no `which` dependency). */
export async function hasCommand(cmd: string, run: CommandRunner = runCommand): Promise<boolean> {
  if (process.platform === 'win32') {
    const r = await run('where', [cmd], { timeoutMs: 5000 })
    return r.code === 0
  }
  const { access, constants } = await import('node:fs/promises')
  const { delimiter, join } = await import('node:path')
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (!dir) continue
    try {
      await access(join(dir, cmd), constants.X_OK)
      return true
    } catch {}
  }
  return false
}
