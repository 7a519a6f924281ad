// Safety rails, checked before any action changes anything. The checks are pure (the context is gathered once per
// enforcement pass) so they are cheap and testable; a non-undefined return is the refusal reason.
import { realpath } from 'node:fs/promises'
import path from 'node:path'
import type { Os } from '../collectors/types.js'
import { defaultProcessTable, type ProcInfo, type ProcessTable } from './proc.js'
import type { Action, Finding, Signal } from './types.js'

export interface SafetyContext {
  os: Os
  selfPid: number
  /** 0, 1, the agent and every ancestor of the agent: never signalled. */
  protectedPids: ReadonlySet<number>
  /** Files and folders never moved: the agent's own runtime, its state dir (the vault lives there). */
  protectedPaths: readonly string[]
  /** Whether the agent runs as root (on Linux, a missing /proc/PID/exe then means a kernel thread). */
  root: boolean
}

export interface SafetyOptions {
  os?: Os
  selfPid?: number
  table?: ProcessTable
  stateDir?: string
  protectedPaths?: readonly string[]
}

function currentOs(): Os {
  return process.platform === 'darwin' || process.platform === 'win32' ? process.platform : 'linux'
}

/** The ppid chain of `pid` up to (not including) 0; stops on a loop or an unreadable process. */
export async function ancestorsOf(pid: number, table: ProcessTable): Promise<number[]> {
  const out: number[] = []
  const seen = new Set([pid])
  let cur = pid
  for (let i = 0; i < 4096; i++) {
    const info = await table.get(cur)
    if (!info || info.ppid <= 0 || seen.has(info.ppid)) break
    out.push(info.ppid)
    seen.add(info.ppid)
    cur = info.ppid
  }
  return out
}

/** Gathered per enforcement pass: the agent can be re-parented (e.g. its service manager restarts). */
export async function buildSafetyContext(opts: SafetyOptions = {}): Promise<SafetyContext> {
  const os = opts.os ?? currentOs()
  const selfPid = opts.selfPid ?? process.pid
  const table = opts.table ?? defaultProcessTable()
  const ancestors = await ancestorsOf(selfPid, table)
  const protectedPaths = [process.execPath, ...(opts.protectedPaths ?? [])]
  if (opts.stateDir) protectedPaths.push(opts.stateDir)
  return {
    os,
    selfPid,
    protectedPids: new Set([0, 1, selfPid, ...ancestors]),
    protectedPaths,
    root: typeof process.getuid === 'function' && process.getuid() === 0,
  }
}

/** Why this process must not be signalled, or undefined when it may be. */
export function checkProcess(info: Pick<ProcInfo, 'pid'> & Partial<ProcInfo>, ctx: SafetyContext): string | undefined {
  const { pid } = info
  if (!Number.isInteger(pid) || pid <= 0) return `invalid pid ${pid}`
  if (pid === 1) return 'pid 1 (init) is never signalled'
  if (pid === ctx.selfPid) return `pid ${pid} is the agent itself`
  if (ctx.protectedPids.has(pid)) return `pid ${pid} is an ancestor of the agent`
  if (ctx.os === 'linux') {
    if (info.kernelThread || pid === 2 || info.ppid === 2) return `pid ${pid} is a kernel thread`
    // As root every user process has a readable exe link; only kernel threads (and zombies) have none.
    if (ctx.root && info.exe === undefined && info.state !== undefined && info.state !== 'Z') {
      return `pid ${pid} has no executable (kernel thread)`
    }
  }
  return undefined
}

const LINUX_SYSTEM = [/^\/(bin|sbin|boot|etc|proc|sys|dev)(\/|$)/, /^\/usr\/(bin|sbin)(\/|$)/, /^\/usr\/lib[^/]*(\/|$)/]
const LINUX_LIB = /^\/lib[^/]*(\/|$)/
const DARWIN_SYSTEM = /^\/(system|usr|bin|sbin|library\/apple)(\/|$)/
const WIN_SYSTEM = [/^[a-z]:\\windows(\\|$)/, /^[a-z]:\\program files( \(x86\))?\\windows[^\\]*(\\|$)/]

/** Normalize for comparison: resolve `.`/`..`, unify separators, fold case where the file system does. */
export function normalizeFor(os: Os, p: string): string {
  if (os === 'win32') {
    const bare = p.replace(/^\\\\\?\\/, '').replace(/\//g, '\\')
    return path.win32.normalize(bare).toLowerCase().replace(/\\+$/, '')
  }
  const n = path.posix.normalize(p).replace(/\/+$/, '') || '/'
  return os === 'darwin' ? n.toLowerCase() : n
}

/** Whether a path is (inside) a system directory whose files the agent never moves without a hash match. */
export function isSystemPath(p: string, os: Os): boolean {
  const n = normalizeFor(os, p)
  if (os === 'win32') return WIN_SYSTEM.some((re) => re.test(n))
  if (n === '/') return true
  if (os === 'darwin') return DARWIN_SYSTEM.test(n)
  return LINUX_SYSTEM.some((re) => re.test(n)) || LINUX_LIB.test(n)
}

function isAbsoluteFor(os: Os, p: string): boolean {
  return os === 'win32' ? /^([a-z]:\\|\\\\)/i.test(p.replace(/\//g, '\\')) : p.startsWith('/')
}

function inside(os: Os, child: string, parent: string): boolean {
  const c = normalizeFor(os, child)
  const p = normalizeFor(os, parent)
  const sep = os === 'win32' ? '\\' : '/'
  return c === p || c.startsWith(p.endsWith(sep) ? p : p + sep) || p.startsWith(c + sep)
}

/**
 * Why this file must not be moved, or undefined when it may be. A system path is allowed only when the finding
 * matched by hash (the caller re-verifies the hash right before moving). Pure: see `checkMovablePath` for the
 * symlink-aware variant.
 */
export function checkPath(p: string, signal: Signal, ctx: SafetyContext): string | undefined {
  if (!p || !isAbsoluteFor(ctx.os, p)) return `path ${JSON.stringify(p)} is not absolute`
  for (const prot of ctx.protectedPaths) {
    if (inside(ctx.os, p, prot)) return `${p} is part of the agent (${prot})`
  }
  if (isSystemPath(p, ctx.os) && signal !== 'sha256') {
    return `${p} is under a system directory and the finding matched by ${signal}, not sha256`
  }
  return undefined
}

/** checkPath on the path as given and on its real location (a symlinked parent can lead into /usr/bin). */
export async function checkMovablePath(p: string, signal: Signal, ctx: SafetyContext): Promise<string | undefined> {
  const direct = checkPath(p, signal, ctx)
  if (direct) return direct
  if (ctx.os === 'win32') return undefined
  try {
    const real = path.join(await realpath(path.dirname(p)), path.basename(p))
    if (real !== p) return checkPath(real, signal, ctx)
  } catch {}
  return undefined
}

/** The file a finding points at for file-moving actions: a process's exe, an executable, an app bundle. */
export function pathOf(finding: Finding): string | undefined {
  const row = finding.row
  switch (row.kind) {
    case 'process':
      return row.exe
    case 'executable':
    case 'app-bundle':
      return row.path
    default:
      return undefined
  }
}

/** Whether the finding carries what the action needs; the reason when it does not. */
export function checkEvidence(action: Action, finding: Finding): string | undefined {
  const row = finding.row
  switch (action) {
    case 'kill':
      if (row.kind === 'connection') {
        // A CIDR match names whatever talked to the address (often a browser), not the banned app.
        return 'a network connection does not identify the banned process'
      }
      if (row.kind !== 'process') return `a ${row.kind} finding has no process to kill`
      if (!Number.isInteger(row.pid) || row.pid <= 0) return 'the finding has no valid pid'
      return undefined
    case 'quarantine':
      if (!['process', 'executable', 'app-bundle'].includes(row.kind))
        return `a ${row.kind} finding has no file to move`
      if (!pathOf(finding)) return 'the finding has no executable path'
      return undefined
    case 'uninstall':
      if (!['package', 'windows-program', 'appx', 'app-bundle'].includes(row.kind)) {
        return `a ${row.kind} finding names no installed package`
      }
      return undefined
    default:
      return undefined
  }
}
