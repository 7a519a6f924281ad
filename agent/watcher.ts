// The process watcher: sees a new process within one tick and hands its findings to the daemon for enforcement.
//
// Linux (every 200 ms): /proc/loadavg's last field is the last pid the kernel handed out; when it has not moved
// since the previous tick no process (or thread) was created and the tick costs one pread of a kept-open fd (~5 µs).
// When it moved, /proc is listed, diffed against the previous pid set (generation marks: no per-tick Set/array
// allocation beyond readdir's own), and only the NEW pids are read (readProcess: stat, exe link, cmdline, status)
// and matched. A new pid is re-checked for a few seconds in case it exec()s later (a launcher script that execs the
// real binary keeps its pid). Worst-case latency from exec to detection: one interval (200 ms) plus the read.
// Known gap: a long-running process that exec()s a banned binary minutes later keeps its pid; the full scan (every
// 15 min) and any policy change catch it.
//
// macOS and Windows: ps-list every 1 s (it spawns `ps` / a helper, so a shorter interval would cost real CPU);
// detection latency up to ~1 s plus the ps run (~50-150 ms).
import { closeSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs'
import type { Finding, Matcher } from '../policies/match.js'
import { inspectProcess, readProcess, splitCommand } from './collectors/processes.js'
import type { FileInspector, Os, ProcessRow } from './collectors/types.js'
import { userNamesByUid } from './collectors/users.js'

export interface WatcherOptions {
  /** Tick interval; default 200 ms on Linux, 1000 ms elsewhere. */
  intervalMs?: number
  os?: Os
  /** Findings for one new process (all of them, report-only included; the daemon decides what to enforce). */
  onFindings(findings: Finding[], row: ProcessRow): void
  onError?(err: unknown): void
  /** How long a new pid is watched for an exec into another binary. Default 3 s. */
  youngMs?: number
  /** Full /proc listing at least this often even when the last pid did not move (defence in depth). */
  fullListMs?: number
}

export interface WatcherStats {
  ticks: number
  /** Ticks that listed /proc (the last pid moved, or the periodic full listing). */
  listings: number
  newPids: number
  matched: number
  /** Processes re-read because their executable changed (exec) while young. */
  execs: number
  errors: number
}

/**
 * The pid-set diff (pure apart from its own state): feed each tick's /proc names, get the pids not seen last time.
 * Generation marks instead of building a new Set per tick; the returned array is reused, so copy it if you keep it.
 */
export class PidDiff {
  private readonly seen = new Map<number, number>()
  private gen = 0
  private readonly fresh: number[] = []
  /** Pids that disappeared at the last update (reused array). */
  readonly gone: number[] = []

  get size(): number {
    return this.seen.size
  }

  has(pid: number): boolean {
    return this.seen.has(pid)
  }

  update(names: readonly string[]): readonly number[] {
    const gen = ++this.gen
    this.fresh.length = 0
    this.gone.length = 0
    let count = 0
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!
      let pid = 0
      let j = 0
      for (; j < name.length; j++) {
        const c = name.charCodeAt(j)
        if (c < 48 || c > 57) break
        pid = pid * 10 + (c - 48)
      }
      if (j === 0 || j !== name.length) continue
      count++
      if (this.seen.get(pid) === undefined) this.fresh.push(pid)
      this.seen.set(pid, gen)
    }
    // Only walk the map when something exited.
    if (this.seen.size !== count) {
      for (const [pid, g] of this.seen) {
        if (g !== gen) {
          this.seen.delete(pid)
          this.gone.push(pid)
        }
      }
    }
    return this.fresh
  }

  /** Same as update, from numbers (ps-list). */
  updatePids(pids: readonly number[]): readonly number[] {
    return this.update(pids.map(String))
  }
}

/** The last-pid field of /proc/loadavg text (pure): `0.39 0.31 0.29 1/152 24637`. */
export function parseLastPid(buf: Buffer, len: number): number {
  let end = len
  while (end > 0 && (buf[end - 1] === 10 || buf[end - 1] === 32)) end--
  let pid = 0
  let mul = 1
  for (let i = end - 1; i >= 0; i--) {
    const c = buf[i]!
    if (c < 48 || c > 57) break
    pid += (c - 48) * mul
    mul *= 10
  }
  return pid
}

interface Young {
  exe: string | undefined
  until: number
}

export class ProcessWatcher {
  readonly stats: WatcherStats = { ticks: 0, listings: 0, newPids: 0, matched: 0, execs: 0, errors: 0 }
  private matcher: Matcher | undefined
  private files: FileInspector | undefined
  private readonly diff = new PidDiff()
  private readonly young = new Map<number, Young>()
  private timer: NodeJS.Timeout | undefined
  private running = false
  private loadFd = -1
  private readonly loadBuf = Buffer.alloc(128)
  private lastPid = -1
  private lastList = 0
  private users: Map<number, string> = new Map()
  private usersAt = 0
  private readonly os: Os
  private readonly interval: number
  private readonly youngMs: number
  private readonly fullListMs: number

  constructor(private readonly opts: WatcherOptions) {
    this.os = opts.os ?? (process.platform as Os)
    this.interval = opts.intervalMs ?? (this.os === 'linux' ? 200 : 1000)
    this.youngMs = opts.youngMs ?? 3000
    this.fullListMs = opts.fullListMs ?? 5000
  }

  /** Swap in the matcher of a new bundle (the daemon re-evaluates running processes separately, at once). */
  setPolicy(matcher: Matcher | undefined, files?: FileInspector) {
    this.matcher = matcher
    this.files = files
  }

  /** Start watching. Processes already running are marked seen (the daemon's full scan covers them). */
  async start() {
    if (this.running) return
    this.running = true
    if (this.os === 'linux') {
      try {
        this.loadFd = openSync('/proc/loadavg', 'r')
      } catch {
        this.loadFd = -1
      }
      this.diff.update(readdirSync('/proc'))
      this.lastPid = this.readLastPid()
      this.lastList = Date.now()
    } else {
      this.diff.updatePids(await this.psPids())
    }
    this.schedule()
  }

  stop() {
    this.running = false
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.loadFd >= 0) {
      try {
        closeSync(this.loadFd)
      } catch {}
      this.loadFd = -1
    }
  }

  private schedule() {
    if (!this.running) return
    // setTimeout after each tick (not setInterval): a slow tick never overlaps the next.
    this.timer = setTimeout(() => {
      this.tick()
        .catch((err) => {
          this.stats.errors++
          this.opts.onError?.(err)
        })
        .finally(() => this.schedule())
    }, this.interval)
  }

  private readLastPid(): number {
    if (this.loadFd < 0) return -1
    try {
      const n = readSync(this.loadFd, this.loadBuf, 0, this.loadBuf.length, 0)
      return parseLastPid(this.loadBuf, n)
    } catch {
      return -1
    }
  }

  /** One tick (public for tests and the benchmark). */
  async tick(): Promise<void> {
    this.stats.ticks++
    if (this.os !== 'linux') return this.tickPs()
    const now = Date.now()
    if (this.young.size > 0) this.checkYoung(now)
    const last = this.readLastPid()
    if (last !== -1 && last === this.lastPid && now - this.lastList < this.fullListMs) return
    this.lastPid = last
    this.lastList = now
    this.stats.listings++
    const fresh = this.diff.update(readdirSync('/proc'))
    for (const pid of this.diff.gone) this.young.delete(pid)
    if (fresh.length === 0) return
    this.stats.newPids += fresh.length
    // Copy: evaluate() is async and the diff's array is reused on the next tick.
    const pids = fresh.slice()
    await Promise.all(pids.map((pid) => this.evaluatePid(pid, now)))
  }

  private usersMap(now: number): Map<number, string> {
    // userNamesByUid stats /etc/passwd on every call: once a few seconds is plenty for new processes.
    if (now - this.usersAt > 5000) {
      this.users = userNamesByUid()
      this.usersAt = now
    }
    return this.users
  }

  private async evaluatePid(pid: number, now: number) {
    if (pid === process.pid) return
    const row = readProcess(pid, { users: this.usersMap(now) })
    if (!row) return
    if (this.youngMs > 0) this.young.set(pid, { exe: row.exe, until: now + this.youngMs })
    await this.evaluateRow(row)
  }

  private checkYoung(now: number) {
    for (const [pid, y] of this.young) {
      if (now > y.until) {
        this.young.delete(pid)
        continue
      }
      let exe: string | undefined
      try {
        exe = readlinkSync(`/proc/${pid}/exe`)
        if (exe.endsWith(' (deleted)')) exe = exe.slice(0, -10)
      } catch {
        exe = undefined
      }
      if (exe !== y.exe && exe !== undefined) {
        y.exe = exe
        this.stats.execs++
        const row = readProcess(pid, { users: this.usersMap(now) })
        if (row) {
          this.evaluateRow(row).catch((err) => {
            this.stats.errors++
            this.opts.onError?.(err)
          })
        }
      }
    }
  }

  private async evaluateRow(row: ProcessRow) {
    const matcher = this.matcher
    if (!matcher) return
    const needsFiles = matcher.needs.hashes || matcher.needs.markers.length > 0
    if (needsFiles && this.files) await inspectProcess(row, this.files, matcher.needs)
    const findings = matcher.match(row)
    if (findings.length === 0) return
    this.stats.matched++
    this.opts.onFindings(findings, row)
  }

  private async psPids(): Promise<number[]> {
    const { default: psList } = await import('ps-list')
    const list = await psList({ all: true })
    this.psCache = list
    return list.map((p) => p.pid)
  }

  private psCache: Awaited<ReturnType<typeof import('ps-list').default>> = []

  private async tickPs() {
    const fresh = this.diff.updatePids(await this.psPids()).slice()
    if (fresh.length === 0) return
    this.stats.listings++
    this.stats.newPids += fresh.length
    const set = new Set(fresh)
    for (const p of this.psCache) {
      if (!set.has(p.pid) || p.pid === process.pid) continue
      const row: ProcessRow = { kind: 'process', pid: p.pid, ppid: p.ppid, name: p.name }
      if (p.path && (p.path.startsWith('/') || /^[A-Za-z]:\\/.test(p.path))) row.exe = p.path
      if (p.cmd) row.argv = splitCommand(p.cmd, row.exe)
      if (p.uid !== undefined) row.uid = p.uid
      await this.evaluateRow(row)
    }
  }
}
