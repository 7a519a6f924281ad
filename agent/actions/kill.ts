// kill: stop the whole process tree (TERM, grace, KILL), verified gone. The tree is frozen with SIGSTOP first so a
// parent cannot respawn children while they are being killed; every pid is re-identified by its start time before
// each signal so a reused pid is never hit.
import type { Os } from '../collectors/types.js'
import { defaultProcessTable, type ProcInfo, type ProcessTable } from './proc.js'
import { runCommand } from './run.js'
import { checkEvidence, checkProcess, type SafetyContext } from './safety.js'
import {
  type ActionResult,
  baseOf,
  type CommandRunner,
  done,
  failed,
  type Finding,
  noop,
  refused,
  type ResultBase,
  toRecord,
} from './types.js'

export interface KillOptions {
  /** Time between SIGTERM and SIGKILL (default 1500 ms). */
  graceMs?: number
  /** How long to wait for the tree to vanish after SIGKILL before reporting failure (default 3000 ms). */
  verifyMs?: number
  pollMs?: number
  table?: ProcessTable
  /** Signal sender (default process.kill); throws ESRCH when the process is gone. */
  send?: (pid: number, signal: NodeJS.Signals) => void
  os?: Os
  /** Windows: runs taskkill. */
  runner?: CommandRunner
}

/** Start times from different sources (procfs ticks, ps seconds) agree within this much for the same process. */
const START_TOLERANCE_MS = 2000

export function taskkillCommand(pid: number): { cmd: string; args: string[] } {
  return { cmd: 'taskkill', args: ['/PID', String(pid), '/T', '/F'] }
}

/** Descendants of `root` in `procs`, deepest first (children die before their parents can notice and respawn). */
export function descendantsOf(root: number, procs: readonly Pick<ProcInfo, 'pid' | 'ppid'>[]): number[] {
  const children = new Map<number, number[]>()
  for (const p of procs) {
    if (p.pid === p.ppid) continue
    const list = children.get(p.ppid)
    if (list) list.push(p.pid)
    else children.set(p.ppid, [p.pid])
  }
  const depth = new Map<number, number>()
  const queue: [number, number][] = [[root, 0]]
  while (queue.length) {
    const [pid, d] = queue.shift()!
    for (const c of children.get(pid) ?? []) {
      if (depth.has(c) || c === root) continue
      depth.set(c, d + 1)
      queue.push([c, d + 1])
    }
  }
  return [...depth.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0]).map(([pid]) => pid)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function currentOs(): Os {
  return process.platform === 'darwin' || process.platform === 'win32' ? process.platform : 'linux'
}

function isDead(info: ProcInfo | undefined, expected: ProcInfo): boolean {
  if (!info || info.state === 'Z' || info.state === 'X') return true
  // Same pid, different start: the original died and the pid was reused.
  if (expected.startTicks !== undefined && info.startTicks !== undefined) return info.startTicks !== expected.startTicks
  return false
}

/** Kill the process a finding names, and its whole tree. */
export async function kill(finding: Finding, safety: SafetyContext, opts: KillOptions = {}): Promise<ActionResult> {
  const base = baseOf('kill', finding)
  const missing = checkEvidence('kill', finding)
  if (missing) return refused(base, missing)
  const row = finding.row
  if (row.kind !== 'process') return refused(base, 'not a process finding')
  return killPid(row.pid, safety, { ...opts, base, expect: { startTime: row.startTime, name: row.name } })
}

export interface KillPidOptions extends KillOptions {
  base?: ResultBase
  /** What the finding saw: a process with another start time or name at this pid is a reused pid. */
  expect?: { startTime?: number; name?: string }
}

export async function killPid(pid: number, safety: SafetyContext, opts: KillPidOptions = {}): Promise<ActionResult> {
  const base = opts.base ?? { action: 'kill' as const, subject: `process:${pid}` }
  const os = opts.os ?? currentOs()
  const table = opts.table ?? defaultProcessTable(os)
  const send = opts.send ?? ((p: number, s: NodeJS.Signals) => void process.kill(p, s))
  const graceMs = opts.graceMs ?? 1500
  const verifyMs = opts.verifyMs ?? 3000
  const pollMs = opts.pollMs ?? 20

  const root = await table.get(pid)
  if (!root || root.state === 'Z' || root.state === 'X') return noop(base, 'not running', { pid })
  const exp = opts.expect
  if (exp?.startTime !== undefined && root.startTime !== undefined) {
    if (Math.abs(exp.startTime - root.startTime) > START_TOLERANCE_MS) {
      return noop(base, `not running (pid ${pid} now belongs to another process, ${root.name ?? '?'})`, { pid })
    }
  } else if (exp?.name && root.name && os === 'linux' && !exp.name.startsWith(root.name)) {
    return noop(base, `not running (pid ${pid} now runs ${root.name})`, { pid })
  }
  const why = checkProcess(root, safety)
  if (why) return refused(base, why, { pid })

  if (os === 'win32') return killWindows(pid, base, opts.runner ?? runCommand, table, verifyMs, pollMs)

  const signals: string[] = []
  const spared: { pid: number; reason: string }[] = []
  const tree = new Map<number, ProcInfo>([[pid, root]]) // every pid we signal, with its identity
  const trySend = (info: ProcInfo, sig: NodeJS.Signals): boolean => {
    try {
      send(info.pid, sig)
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ESRCH') return false
      throw err
    }
  }

  // Freeze: stop the root, then repeatedly collect and stop descendants until no new ones appear.
  try {
    trySend(root, 'SIGSTOP')
  } catch (err) {
    return failed(base, `cannot signal pid ${pid}: ${(err as Error).message}`, { pid })
  }
  const sparedSet = new Set<number>()
  for (let round = 0; round < 20; round++) {
    const procs = await table.list()
    let added = 0
    for (const d of descendantsOf(pid, procs)) {
      if (tree.has(d) || sparedSet.has(d)) continue
      const info = await table.get(d)
      if (!info || info.state === 'Z') continue
      const parentSpared = sparedSet.has(info.ppid)
      const reason = parentSpared ? `child of spared pid ${info.ppid}` : checkProcess(info, safety)
      if (reason) {
        sparedSet.add(d)
        spared.push({ pid: d, reason })
        continue
      }
      tree.set(d, info)
      trySend(info, 'SIGSTOP')
      added++
    }
    if (!added) break
  }
  const order = [...descendantsOf(pid, [...tree.values()]), pid]
  const alive = async () => {
    const out: ProcInfo[] = []
    for (const p of order) {
      const info = tree.get(p)!
      if (!isDead(await table.get(p), info)) out.push(info)
    }
    return out
  }
  const waitGone = async (ms: number) => {
    const until = Date.now() + ms
    let left = await alive()
    while (left.length && Date.now() < until) {
      await sleep(pollMs)
      left = await alive()
    }
    return left
  }

  let left: ProcInfo[]
  try {
    signals.push('SIGTERM')
    // Re-identify right before signalling: a pid that died meanwhile could already be someone else's.
    for (const info of await alive()) trySend(info, 'SIGTERM')
    for (const info of await alive()) trySend(info, 'SIGCONT')
    left = await waitGone(graceMs)
    if (left.length) {
      signals.push('SIGKILL')
      for (const info of left) trySend(info, 'SIGKILL')
      left = await waitGone(verifyMs)
    }
  } catch (err) {
    // Never leave a frozen tree behind.
    for (const info of await alive()) trySend(info, 'SIGCONT')
    return failed(base, `signalling failed: ${(err as Error).message}`, { pid, signals, spared })
  }
  const killed = order.filter((p) => !left.some((l) => l.pid === p))
  if (left.length) {
    return failed(base, `still running after SIGKILL: ${left.map((l) => l.pid).join(', ')}`, {
      pid,
      killed,
      signals,
      spared,
    })
  }
  const extra = order.length > 1 ? ` and ${order.length - 1} descendant(s)` : ''
  return done(base, `killed pid ${pid}${extra} with ${signals.join(' then ')}`, { pid, killed, signals, spared })
}

async function killWindows(
  pid: number,
  base: ResultBase,
  run: CommandRunner,
  table: ProcessTable,
  verifyMs: number,
  pollMs: number,
): Promise<ActionResult> {
  const { cmd, args } = taskkillCommand(pid)
  const r = await run(cmd, args, { timeoutMs: 15_000 })
  const rec = toRecord(cmd, args, r)
  // taskkill exits 128 when the process is already gone.
  if (r.code === 128) return noop(base, 'not running', { pid, commands: [rec] })
  const until = Date.now() + verifyMs
  while (Date.now() < until) {
    if (!(await table.get(pid)))
      return done(base, `killed pid ${pid} and its tree (taskkill /T /F)`, { pid, commands: [rec] })
    await sleep(pollMs)
  }
  return failed(base, `pid ${pid} still running after taskkill (exit ${r.code})`, { pid, commands: [rec] })
}
