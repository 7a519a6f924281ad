// A small process table abstraction for kill and safety: Linux reads /proc directly (exact ppid, start time, kernel
// thread flag); elsewhere ps-list. Injectable so the rails can be tested without real processes.
import { readFile, readdir, readlink } from 'node:fs/promises'

export interface ProcInfo {
  pid: number
  ppid: number
  /** Linux comm, ps-list name elsewhere. */
  name?: string
  /** Linux one-letter state (R, S, D, Z, T, ...). */
  state?: string
  /** Start time in ms since the epoch (Linux: boot time + start ticks; 10 ms resolution, boot time to the second). */
  startTime?: number
  /** Raw start ticks since boot (Linux): the exact identity check against pid reuse. */
  startTicks?: number
  kernelThread?: boolean
  exe?: string
}

export interface ProcessTable {
  /** One process, or undefined when it does not exist. */
  get(pid: number): Promise<ProcInfo | undefined>
  /** Every process (for building the child tree). */
  list(): Promise<ProcInfo[]>
}

const PF_KTHREAD = 0x00200000
const CLK_TCK = 100 // USER_HZ is 100 on every Linux ABI Node supports

let bootTimeMs: number | undefined
async function bootTime(procRoot: string): Promise<number> {
  if (bootTimeMs !== undefined) return bootTimeMs
  const text = await readFile(`${procRoot}/stat`, 'utf8').catch(() => '')
  const m = text.match(/^btime (\d+)$/m)
  bootTimeMs = m?.[1] ? Number(m[1]) * 1000 : 0
  return bootTimeMs
}

/** Parse /proc/PID/stat; comm may contain spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): Omit<ProcInfo, 'startTime' | 'exe'> | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return undefined
  const pid = Number(text.slice(0, open).trim())
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/)
  const ppid = Number(rest[1])
  const flags = Number(rest[6])
  const startTicks = Number(rest[19])
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return undefined
  return {
    pid,
    ppid,
    name: text.slice(open + 1, close),
    state: rest[0],
    startTicks: Number.isFinite(startTicks) ? startTicks : undefined,
    kernelThread: Number.isFinite(flags) ? (flags & PF_KTHREAD) !== 0 : undefined,
  }
}

export function linuxProcessTable(procRoot = '/proc'): ProcessTable {
  const get = async (pid: number, withExe = true): Promise<ProcInfo | undefined> => {
    let text: string
    try {
      text = await readFile(`${procRoot}/${pid}/stat`, 'utf8')
    } catch {
      return undefined
    }
    const st = parseStat(text)
    if (!st) return undefined
    const boot = await bootTime(procRoot)
    const info: ProcInfo = {
      ...st,
      startTime: st.startTicks !== undefined && boot ? boot + (st.startTicks * 1000) / CLK_TCK : undefined,
    }
    // Kernel threads have ppid 2 (kthreadd) or are kthreadd itself, even where the flag is unreadable.
    if (st.ppid === 2 || st.pid === 2) info.kernelThread = true
    if (withExe) {
      try {
        info.exe = (await readlink(`${procRoot}/${pid}/exe`)).replace(/ \(deleted\)$/, '')
      } catch {}
    }
    return info
  }
  return {
    get: (pid) => get(pid),
    async list() {
      const names = await readdir(procRoot).catch(() => [] as string[])
      const out = await Promise.all(names.filter((n) => /^\d+$/.test(n)).map((n) => get(Number(n), false)))
      return out.filter((p): p is ProcInfo => p !== undefined)
    },
  }
}

/** macOS and Windows: ps-list (no kernel-thread or exact start-time notion; existence checked with signal 0). */
export function psListProcessTable(): ProcessTable {
  const list = async (): Promise<ProcInfo[]> => {
    const { default: psList } = await import('ps-list')
    const rows = await psList({ all: true })
    return rows.map((r) => ({
      pid: r.pid,
      ppid: r.ppid,
      name: r.name,
      exe: r.path,
      startTime: r.startTime?.getTime(),
    }))
  }
  return {
    list,
    async get(pid) {
      try {
        process.kill(pid, 0)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return undefined
      }
      return (await list()).find((p) => p.pid === pid) ?? { pid, ppid: -1 }
    },
  }
}

export function defaultProcessTable(os: NodeJS.Platform = process.platform): ProcessTable {
  return os === 'linux' ? linuxProcessTable() : psListProcessTable()
}
