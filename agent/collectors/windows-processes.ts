// Windows process list without trusting a file anyone could swap: ps-list's fastlist.exe (x64) is written from the
// binary's own SEA asset into a directory only the agent can write, and checked by SHA-256 before every run. Where
// fastlist cannot run (ARM64: ps-list throws there) or fails: PowerShell CIM (Win32_Process as JSON, with exe path
// and command line), then `tasklist /FO CSV`. Wire-up: processes.ts calls `windowsProcesses()` on win32.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, win32 } from 'node:path'
import { promisify } from 'node:util'
import type { ProcessRow } from './types.js'
import { parseWindowsCommandLine } from './windows/command-line.js'

const run = promisify(execFile)
const MAX_BUFFER = 64 * 1024 * 1024

/** fastlist 0.3.0 x64 as shipped in ps-list 9 (node_modules/ps-list/vendor/fastlist-0.3.0-x64.exe). */
export const FASTLIST_X64_SHA256 = 'd1a71f9ac1728082c1b276392725c3e010b98714888579b99152e401abedbf11'

export type ProcessSource = 'fastlist' | 'cim' | 'tasklist'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** fastlist's bytes: the SEA asset inside a built binary, else ps-list's vendored copy (checkout). */
async function fastlistBytes(): Promise<Buffer | undefined> {
  const sea = await import('node:sea')
  if (sea.isSea()) {
    try {
      return Buffer.from(sea.getAsset('fastlist.exe'))
    } catch {
      return undefined // a build without the asset (not win-x64)
    }
  }
  try {
    const url = new URL('../../node_modules/ps-list/vendor/fastlist-0.3.0-x64.exe', import.meta.url)
    return readFileSync(url)
  } catch {
    return undefined
  }
}

/**
 * A directory that only the agent's account and administrators can write: `%ProgramData%\Interdict\bin` with
 * inheritance removed (SYSTEM and Administrators full control) when elevated, else the user's own
 * `%LOCALAPPDATA%\Interdict\bin` (a per-user profile folder).
 */
export async function toolsDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const machine = win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Interdict', 'bin')
  try {
    mkdirSync(machine, { recursive: true })
    // SIDs, not names (localised Windows): S-1-5-18 LocalSystem, S-1-5-32-544 Administrators.
    await run('icacls', [machine, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F'], {
      windowsHide: true,
    })
    return machine
  } catch {
    const user = win32.join(
      env.LOCALAPPDATA ?? win32.join(env.USERPROFILE ?? 'C:\\', 'AppData', 'Local'),
      'Interdict',
      'bin',
    )
    mkdirSync(user, { recursive: true })
    return user
  }
}

/** Write fastlist into `dir` unless an identical copy is there; returns its path, verified against `expected`. */
export function materializeFastlist(dir: string, bytes: Buffer, expected = FASTLIST_X64_SHA256): string {
  if (sha256(bytes) !== expected) throw new Error('embedded fastlist does not match its pinned SHA-256')
  const path = join(dir, `fastlist-${expected.slice(0, 12)}.exe`)
  const current = existsSync(path) ? sha256(readFileSync(path)) : undefined
  if (current !== expected) {
    const tmp = `${path}.${process.pid}.tmp`
    writeFileSync(tmp, bytes)
    renameSync(tmp, path)
  }
  // Checked again right before use: a copy that changed since it was written is never run.
  if (sha256(readFileSync(path)) !== expected) throw new Error(`${path} changed after it was written: not running it`)
  return path
}

/** fastlist output: `pid\tppid\tname` per line (pure). */
export function parseFastlist(stdout: string): ProcessRow[] {
  const rows: ProcessRow[] = []
  for (const line of stdout.split(/\r?\n/)) {
    const [pid, ppid, name] = line.split('\t')
    if (!pid || !name) continue
    rows.push({ kind: 'process', pid: Number(pid), ppid: Number(ppid), name })
  }
  return rows.filter((r) => Number.isInteger(r.pid))
}

interface CimProcess {
  ProcessId: number
  ParentProcessId: number
  Name: string
  ExecutablePath?: string | null
  CommandLine?: string | null
  CreationDate?: string | null
}

/** `Get-CimInstance Win32_Process | ConvertTo-Json` output (pure). CreationDate arrives as `/Date(ms)/`. */
export function parseCimJson(stdout: string): ProcessRow[] {
  const text = stdout.trim()
  if (!text) return []
  const parsed = JSON.parse(text) as CimProcess | CimProcess[]
  const list = Array.isArray(parsed) ? parsed : [parsed]
  return list.map((p) => {
    const row: ProcessRow = { kind: 'process', pid: p.ProcessId, ppid: p.ParentProcessId, name: p.Name }
    if (p.ExecutablePath) row.exe = p.ExecutablePath
    if (p.CommandLine) row.argv = parseWindowsCommandLine(p.CommandLine)
    const ms = /\/Date\((\d+)\)\//.exec(p.CreationDate ?? '')
    if (ms?.[1]) row.startTime = Number(ms[1])
    return row
  })
}

/** `tasklist /FO CSV /NH` output: "name","pid","session","#","mem" (pure). No parent pid: ppid is 0. */
export function parseTasklistCsv(stdout: string): ProcessRow[] {
  const rows: ProcessRow[] = []
  for (const line of stdout.split(/\r?\n/)) {
    const cells = [...line.matchAll(/"((?:[^"]|"")*)"/g)].map((m) => (m[1] ?? '').replace(/""/g, '"'))
    const [name, pid] = cells
    if (!name || !pid || !/^\d+$/.test(pid)) continue
    rows.push({ kind: 'process', pid: Number(pid), ppid: 0, name })
  }
  return rows
}

const CIM_SCRIPT =
  'Get-CimInstance Win32_Process | Select-Object ProcessId,ParentProcessId,Name,ExecutablePath,CommandLine,' +
  'CreationDate | ConvertTo-Json -Compress -Depth 2'

/** Every process on this Windows host, from the first source that works. */
export async function windowsProcesses(
  opts: { arch?: string; sources?: ProcessSource[] } = {},
): Promise<{ rows: ProcessRow[]; source: ProcessSource; errors: string[] }> {
  const arch = opts.arch ?? process.arch
  const sources = opts.sources ?? (arch === 'x64' ? ['fastlist', 'cim', 'tasklist'] : ['cim', 'tasklist'])
  const errors: string[] = []
  for (const source of sources) {
    try {
      if (source === 'fastlist') {
        const bytes = await fastlistBytes()
        if (!bytes) throw new Error('fastlist is not available')
        const exe = materializeFastlist(await toolsDir(), bytes)
        const { stdout } = await run(exe, [], { windowsHide: true, maxBuffer: MAX_BUFFER, encoding: 'utf8' })
        return { rows: parseFastlist(stdout), source, errors }
      }
      if (source === 'cim') {
        const { stdout } = await run(
          'powershell.exe',
          ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', CIM_SCRIPT],
          { windowsHide: true, maxBuffer: MAX_BUFFER, encoding: 'utf8', timeout: 60_000 },
        )
        return { rows: parseCimJson(stdout), source, errors }
      }
      const { stdout } = await run('tasklist.exe', ['/FO', 'CSV', '/NH'], {
        windowsHide: true,
        maxBuffer: MAX_BUFFER,
        encoding: 'utf8',
      })
      return { rows: parseTasklistCsv(stdout), source, errors }
    } catch (err) {
      errors.push(`${source}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  throw new Error(`no Windows process source worked: ${errors.join('; ')}`)
}
