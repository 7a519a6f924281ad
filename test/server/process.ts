// Spawn the real executables (bin/interdict-server.js, bin/interdictctl.js) for end-to-end tests.
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'

const ROOT = join(import.meta.dirname, '..', '..')

export interface ServerProcess {
  url: string
  child: ChildProcess
  stdout: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export function spawnServer(
  args: string[],
  env: Record<string, string | undefined> = {},
  /** Node flags before the script, e.g. --cpu-prof for the benches. */
  nodeArgs: string[] = [],
  /** A standalone server binary to run instead of bin/interdict-server.js. */
  exe?: string,
): Promise<ServerProcess> {
  const [cmd, pre] = exe ? [exe, []] : [process.execPath, [...nodeArgs, join(ROOT, 'bin/interdict-server.js')]]
  const child = spawn(cmd, [...pre, '--port', '0', ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => {
    out += d
  })
  child.stderr!.on('data', (d) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start:\n${out}\n${err}`))
    }, 30_000)
    const check = () => {
      const m = /"address":"(https?:\/\/[^"]+)"/.exec(out)
      if (!m) return
      clearTimeout(timer)
      child.stdout!.off('data', check)
      resolve({
        url: m[1]!,
        child,
        stdout: () => out,
        stop: async (signal = 'SIGTERM') => {
          if (child.exitCode === null) child.kill(signal)
          return exited
        },
      })
    }
    child.stdout!.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${out}\n${err}`))
    })
  })
}

export function runCtl(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/interdictctl.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, INTERDICT_SERVER: undefined, INTERDICT_TOKEN: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}
