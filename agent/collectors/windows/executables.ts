// .exe files in the folders where users keep software no installer registered: Downloads, Desktop and AppData
// (per-user installs and portable copies). Each one's PE version info names the product even after a rename.
import type { Dirent } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { inspectPe, type PeVersionInfo } from '../pe.js'
import type { CollectContext, Collector, ExecutableRow } from '../types.js'

export const WINDOWS_EXE_DIRS: readonly { dir: string[]; depth: number }[] = [
  { dir: ['Downloads'], depth: 3 },
  { dir: ['Desktop'], depth: 3 },
  { dir: ['AppData', 'Roaming'], depth: 4 },
  { dir: ['AppData', 'Local'], depth: 4 },
]
// Huge trees that hold no user-placed programs: Store app data, caches, source checkouts.
const SKIP_DIRS = new Set(['packages', 'node_modules', '.git', '__pycache__', 'crashdumps', 'd3dscache', 'inetcache'])

export interface WindowsExecutablesOptions {
  /** Directory entries examined per search root. Default 10,000. */
  maxEntries?: number
  /** Rows returned in total. Default 2,000. */
  maxRows?: number
  /** Replaces the search depths of WINDOWS_EXE_DIRS (tests). */
  maxDepth?: number
}

const BATCH = 16

export async function windowsExecutables(
  ctx: CollectContext,
  opts: WindowsExecutablesOptions = {},
): Promise<ExecutableRow[]> {
  const maxEntries = opts.maxEntries ?? 10_000
  const maxRows = opts.maxRows ?? 2000
  const names = new Set(ctx.needs.names.map((n) => n.toLowerCase()))
  // With hash or marker rules every PE counts: a renamed, version-stripped copy is only known by its bytes.
  const deep = ctx.needs.hashes || ctx.needs.markers.length > 0
  const out: ExecutableRow[] = []
  const seen = new Set<string>()

  async function consider(path: string, name: string, user: string) {
    if (out.length >= maxRows) return
    let size: number
    try {
      const s = await stat(path)
      if (!s.isFile() || s.size === 0) return
      size = s.size
    } catch {
      return
    }
    let info: PeVersionInfo | undefined
    let isPe = false
    try {
      const pe = await inspectPe(path)
      info = pe.version
      isPe = pe.pe
    } catch {
      // unreadable (locked by a running installer, access denied): only a name match can still count
    }
    const named = names.has(name.toLowerCase())
    // Worth a row if something in it can match: its name, its version info, or (for hash rules) its bytes.
    if (!(named || info?.productName || info?.companyName || (deep && isPe))) return
    const key = path.toLowerCase()
    if (seen.has(key) || out.length >= maxRows) return
    seen.add(key)
    const row: ExecutableRow = { kind: 'executable', path, source: 'pe', user, size }
    if (info?.productName) row.peProductName = info.productName
    if (info?.companyName) row.peCompanyName = info.companyName
    if (deep) {
      const facts = await ctx.files.inspect(path)
      if (facts?.sha256) row.sha256 = facts.sha256
      if (facts?.markers?.length) row.markers = facts.markers
    }
    out.push(row)
  }

  for (const home of ctx.homes) {
    for (const spec of WINDOWS_EXE_DIRS) {
      let budget = maxEntries
      const stack = [{ dir: join(home.home, ...spec.dir), depth: opts.maxDepth ?? spec.depth }]
      while (stack.length > 0 && budget > 0 && out.length < maxRows) {
        const { dir, depth } = stack.pop()!
        let entries: Dirent[]
        try {
          entries = await readdir(dir, { withFileTypes: true })
        } catch {
          continue
        }
        const exes: string[] = []
        for (const e of entries) {
          if (--budget < 0) break
          // Directory junctions and symlinks are not followed: AppData has legacy junctions that loop.
          if (e.isDirectory()) {
            if (depth > 0 && !SKIP_DIRS.has(e.name.toLowerCase()))
              stack.push({ dir: join(dir, e.name), depth: depth - 1 })
          } else if (e.isFile() && e.name.toLowerCase().endsWith('.exe')) exes.push(e.name)
        }
        for (let i = 0; i < exes.length; i += BATCH) {
          await Promise.all(exes.slice(i, i + BATCH).map((n) => consider(join(dir, n), n, home.user)))
        }
      }
    }
  }
  return out
}

export const windowsExecutablesCollector: Collector = {
  name: 'windows-executables',
  os: ['win32'],
  collect: (ctx) => windowsExecutables(ctx),
}
