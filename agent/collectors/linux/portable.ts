// Executables that no package manager knows: AppImages and portable copies (tarball builds, renamed binaries) in
// the places users put them. Bounded in depth and file count so a huge Downloads folder cannot stall a scan.
import type { Dirent } from 'node:fs'
import { readdirSync, statSync } from 'node:fs'
import { open, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import type { CollectContext, Collector, ExecutableRow } from '../types.js'
import { atRoot } from '../users.js'

export const PORTABLE_HOME_DIRS = ['Downloads', 'Desktop', 'bin', '.local/bin', 'Applications']
export const PORTABLE_SYSTEM_DIRS = ['/opt']
const SKIP_DIRS = new Set(['node_modules', '.cache', '.git', '.svn', '__pycache__', '.venv', 'proc', 'sys'])

export interface PortableOptions {
  /** Directory levels below each search root. Default 4. */
  maxDepth?: number
  /** Directory entries examined per search root. Default 10,000. */
  maxEntries?: number
}

export type ExecKind = 'elf' | 'appimage' | 'pe' | 'other'

/** Classify a file by its first bytes (pure). AppImage: ELF with `AI` and type 1 or 2 at offset 8. */
export function classifyHeader(head: Uint8Array): ExecKind {
  if (head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    if (head.length >= 11 && head[8] === 0x41 && head[9] === 0x49 && (head[10] === 1 || head[10] === 2)) {
      return 'appimage'
    }
    return 'elf'
  }
  if (head.length >= 2 && head[0] === 0x4d && head[1] === 0x5a) return 'pe'
  return 'other'
}

async function readHeader(path: string): Promise<ExecKind> {
  let fh: Awaited<ReturnType<typeof open>> | undefined
  try {
    fh = await open(path, 'r')
    const buf = Buffer.alloc(16)
    const { bytesRead } = await fh.read(buf, 0, 16, 0)
    return classifyHeader(buf.subarray(0, bytesRead))
  } catch {
    return 'other'
  } finally {
    await fh?.close().catch(() => {})
  }
}

const BATCH = 32
const SHARED_LIB = /\.so(?:\.\d+)*$/

interface Root {
  dir: string
  depth: number
  user?: string
}

/** Search the portable-app locations and return the executables worth matching. */
export async function portableExecutables(ctx: CollectContext, opts: PortableOptions = {}): Promise<ExecutableRow[]> {
  const maxDepth = opts.maxDepth ?? 4
  const maxEntries = opts.maxEntries ?? 10_000
  const names = new Set(ctx.needs.names.map((n) => n.toLowerCase()))
  // With hash or marker rules every executable counts: a renamed copy is only recognisable by its bytes.
  const deep = ctx.needs.hashes || ctx.needs.markers.length > 0
  const roots: Root[] = [
    ...PORTABLE_SYSTEM_DIRS.map((d) => ({ dir: atRoot(ctx.root, d), depth: maxDepth })),
    ...ctx.homes.flatMap((h) => [
      // Loose files directly in the home folder (a downloaded AppImage), without descending.
      { dir: h.home, depth: 0, user: h.user },
      ...PORTABLE_HOME_DIRS.map((d) => ({ dir: join(h.home, d), depth: maxDepth, user: h.user })),
    ]),
  ]
  const out = new Map<string, ExecutableRow>()

  async function consider(path: string, name: string, user: string | undefined) {
    // Sync stat: metadata is almost always cached, and thousands of async stats cost 10x more in thread-pool hops.
    // It follows a symlinked file; symlinked directories are never descended.
    const s = statSync(path, { throwIfNoEntry: false })
    if (!s?.isFile() || s.size === 0) return
    const lower = name.toLowerCase()
    const named = names.has(lower)
    const appImageName = lower.endsWith('.appimage')
    const executable = (s.mode & 0o111) !== 0
    // Headers only of files that could run: executable on Linux, or Windows binaries (run via Wine, no mode bit).
    const peName = lower.endsWith('.exe')
    let kind: ExecKind = 'other'
    if (executable || appImageName || (deep && peName) || named) kind = await readHeader(path)
    const isAppImage = appImageName || kind === 'appimage'
    const isBinary = (kind === 'elf' && executable && !SHARED_LIB.test(lower)) || kind === 'pe' || kind === 'appimage'
    if (!(named || isAppImage || (deep && isBinary))) return
    let real = path
    try {
      real = await realpath(path)
    } catch {}
    if (out.has(real)) return
    const row: ExecutableRow = { kind: 'executable', path: real, source: isAppImage ? 'appimage' : 'portable' }
    if (user) row.user = user
    row.size = s.size
    out.set(real, row)
    if (deep) {
      const facts = await ctx.files.inspect(real)
      if (facts?.sha256) row.sha256 = facts.sha256
      if (facts?.markers?.length) row.markers = facts.markers
    }
  }

  async function search(root: Root) {
    let budget = maxEntries
    let sinceYield = 0
    const stack: { dir: string; depth: number }[] = [{ dir: root.dir, depth: root.depth }]
    while (stack.length > 0 && budget > 0) {
      const { dir, depth } = stack.pop()!
      let entries: Dirent[]
      try {
        // Sync listing for the same reason as the sync stat; the loop yields to the event loop regularly.
        entries = readdirSync(dir, { withFileTypes: true })
      } catch {
        continue
      }
      const files: Dirent[] = []
      for (const e of entries) {
        if (--budget < 0) break
        if (e.isDirectory()) {
          if (depth > 0 && !SKIP_DIRS.has(e.name)) stack.push({ dir: join(dir, e.name), depth: depth - 1 })
        } else if (e.isFile() || e.isSymbolicLink()) {
          files.push(e)
        }
      }
      // In small batches: thousands of simultaneous opens would exhaust file descriptors.
      for (let i = 0; i < files.length; i += BATCH) {
        await Promise.all(files.slice(i, i + BATCH).map((e) => consider(join(dir, e.name), e.name, root.user)))
      }
      sinceYield += entries.length
      if (sinceYield > 500) {
        sinceYield = 0
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
  }

  // Roots one after another: bounded concurrency (one directory's files at a time) keeps the scan light.
  for (const root of roots) await search(root)
  return [...out.values()]
}

export const portableCollector: Collector = {
  name: 'portable',
  os: ['linux'],
  collect: (ctx) => portableExecutables(ctx),
}
