// Running processes. On Linux /proc is read directly and synchronously: it is in-memory, a few syscalls per pid,
// and far faster than spawning ps. Other OSes use ps-list.
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { windowsProcesses } from './windows-processes.js'
import type { Collector, CollectNeeds, FileInspector, ProcessRow } from './types.js'
import { userNamesByUid } from './users.js'

// The kernel's USER_HZ is 100 on every Linux architecture that matters; /proc times are in these ticks.
const CLK_TCK = 100
// task->flags bit for kernel threads (include/linux/sched.h).
const PF_KTHREAD = 0x00200000

let bootTimeMs: number | undefined

/** Boot time from /proc/stat `btime` (constant for the life of the system, so read once). */
export function bootTime(): number {
  if (bootTimeMs === undefined) {
    const m = readFileSync('/proc/stat', 'utf8').match(/^btime (\d+)$/m)
    bootTimeMs = m?.[1] ? Number(m[1]) * 1000 : 0
  }
  return bootTimeMs
}

/** Every process id in /proc (thread ids are not listed there). */
export function listPids(): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0)
    if (c >= 48 && c <= 57) out.push(Number(name))
  }
  return out
}

export interface ProcStat {
  comm: string
  state: string
  ppid: number
  flags: number
  /** Start time in clock ticks since boot. */
  startTicks: number
}

/** Parse /proc/PID/stat (pure). comm may contain spaces and parentheses, so split at the last `)`. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return undefined
  const f = text.slice(close + 2).split(' ')
  // f[0] is field 3 (state); field N is f[N - 3].
  const ppid = Number(f[1])
  const flags = Number(f[6])
  const startTicks = Number(f[19])
  if (!Number.isFinite(ppid) || !Number.isFinite(startTicks)) return undefined
  return { comm: text.slice(open + 1, close), state: f[0] ?? '', ppid, flags, startTicks }
}

/** The real uid from /proc/PID/status text (pure). */
export function parseStatusUid(text: string): number | undefined {
  const i = text.indexOf('\nUid:')
  if (i < 0) return undefined
  const m = /^\s*(\d+)/.exec(text.slice(i + 5, i + 40))
  return m?.[1] ? Number(m[1]) : undefined
}

/** Split /proc/PID/cmdline (NUL-separated, NUL-terminated) into argv (pure). */
export function parseCmdline(buf: Buffer): string[] {
  if (buf.length === 0) return []
  const parts = buf.toString('utf8').split('\0')
  if (parts[parts.length - 1] === '') parts.pop()
  return parts
}

// One reusable buffer for /proc reads: readFileSync would fstat and allocate per file, for files that report size 0.
let procBuf = Buffer.allocUnsafe(16 * 1024)

/** Read a whole /proc file synchronously; undefined when it is gone. Returns a view into the shared buffer. */
function readProcBytes(path: string): Buffer | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    let len = 0
    for (;;) {
      const n = readSync(fd, procBuf, len, procBuf.length - len, null)
      if (n === 0) break
      len += n
      if (len === procBuf.length) {
        // Long command lines: grow and keep reading.
        const bigger = Buffer.allocUnsafe(procBuf.length * 2)
        procBuf.copy(bigger, 0, 0, len)
        procBuf = bigger
      }
    }
    return procBuf.subarray(0, len)
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

function readProcText(path: string): string | undefined {
  return readProcBytes(path)?.toString('utf8')
}

export interface ReadProcessOptions {
  /** uid -> name; default the cached /etc/passwd map. */
  users?: Map<number, string>
  /** Also return kernel threads (they are never a target and are skipped by default). */
  kernelThreads?: boolean
}

/**
 * One process from /proc, synchronously (a handful of syscalls). Undefined when the pid is gone, is a zombie or is a
 * kernel thread. Does not read the executable's bytes: see `inspectProcess`.
 */
export function readProcess(pid: number, opts: ReadProcessOptions = {}): ProcessRow | undefined {
  const dir = `/proc/${pid}`
  const statText = readProcText(`${dir}/stat`)
  const st = statText === undefined ? undefined : parseProcStat(statText)
  if (!st || st.state === 'Z' || st.state === 'X') return undefined // exited, or a zombie
  // Decide on kernel threads before touching exe: the failing readlink would cost an exception per thread.
  const kthread = (st.flags & PF_KTHREAD) !== 0 || pid === 2 || st.ppid === 2
  let exe: string | undefined
  if (!kthread || opts.kernelThreads) {
    try {
      exe = readlinkSync(`${dir}/exe`)
      if (exe.endsWith(' (deleted)')) exe = exe.slice(0, -' (deleted)'.length)
    } catch {
      // ENOENT: exiting; EACCES: another user's process while we are not root
    }
  }
  if (kthread && exe === undefined && !opts.kernelThreads) return undefined
  // The buffer is shared: parse each file before reading the next.
  const cmdline = readProcBytes(`${dir}/cmdline`)
  if (cmdline === undefined) return undefined // exited between reads
  const argv = parseCmdline(cmdline)
  const status = readProcText(`${dir}/status`)
  if (status === undefined) return undefined
  const uid = parseStatusUid(status)
  const row: ProcessRow = { kind: 'process', pid, ppid: st.ppid, name: st.comm }
  if (exe !== undefined) row.exe = exe
  if (argv.length > 0) row.argv = argv
  if (uid !== undefined) {
    row.uid = uid
    const user = (opts.users ?? userNamesByUid()).get(uid)
    if (user !== undefined) row.user = user
  }
  const bt = bootTime()
  if (bt > 0) row.startTime = bt + Math.round((st.startTicks * 1000) / CLK_TCK)
  return row
}

/** Every process on a Linux host (kernel threads and zombies excluded), without file facts. */
export function linuxProcesses(opts: ReadProcessOptions = {}): ProcessRow[] {
  const users = opts.users ?? userNamesByUid()
  const out: ProcessRow[] = []
  // Expected failures (exited pids, EACCES on exe) throw; without stack capture each costs far less.
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    for (const pid of listPids()) {
      const row = readProcess(pid, { ...opts, users })
      if (row) out.push(row)
    }
  } finally {
    Error.stackTraceLimit = limit
  }
  return out
}

/**
 * Add sha256/markers of the process's executable when the policy needs them. On Linux the bytes are read through
 * /proc/PID/exe: that is the image actually running, even if the file was deleted, replaced or lives in another
 * mount namespace; its identity (dev, ino) is the real file's, so the cache still applies.
 */
export async function inspectProcess(row: ProcessRow, files: FileInspector, needs: CollectNeeds): Promise<ProcessRow> {
  if (!row.exe || (!needs.hashes && needs.markers.length === 0)) return row
  let facts = process.platform === 'linux' ? await files.inspect(`/proc/${row.pid}/exe`) : undefined
  if (!facts && isAbsolute(row.exe)) facts = await files.inspect(row.exe)
  if (facts?.sha256) row.sha256 = facts.sha256
  if (facts?.markers && facts.markers.length > 0) row.markers = facts.markers
  return row
}

/** Split a ps command line into argv; the executable path (which may contain spaces) is kept whole when known. */
export function splitCommand(cmd: string, path?: string): string[] {
  if (path && cmd.startsWith(path)) {
    const rest = cmd.slice(path.length).trim()
    return rest ? [path, ...rest.split(/\s+/)] : [path]
  }
  return cmd.trim() ? cmd.trim().split(/\s+/) : []
}

async function psListProcesses(): Promise<ProcessRow[]> {
  const { default: psList } = await import('ps-list')
  const list = await psList({ all: true })
  return list.map((p) => {
    const row: ProcessRow = { kind: 'process', pid: p.pid, ppid: p.ppid, name: p.name }
    // ps-list falls back to the (truncated) comm when it has no path: only an absolute path is an exe.
    if (p.path && isAbsolute(p.path)) row.exe = p.path
    if (p.cmd) row.argv = splitCommand(p.cmd, row.exe)
    if (p.uid !== undefined) row.uid = p.uid
    if (p.startTime) row.startTime = p.startTime.getTime()
    return row
  })
}

export const processesCollector: Collector = {
  name: 'processes',
  os: ['linux', 'darwin', 'win32'],
  async collect(ctx) {
    const self = process.platform
    const rows =
      ctx.os === 'linux' && self === 'linux'
        ? linuxProcesses()
        : self === 'win32'
          ? (await windowsProcesses()).rows // fastlist checked by hash, with CIM/tasklist fallbacks (arm64)
          : await psListProcesses()
    if (ctx.needs.hashes || ctx.needs.markers.length > 0) {
      await Promise.all(rows.map((r) => inspectProcess(r, ctx.files, ctx.needs)))
    }
    return rows
  },
}
