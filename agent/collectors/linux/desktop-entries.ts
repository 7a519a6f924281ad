// freedesktop .desktop launchers, system-wide and per user. A launcher whose Exec points outside the system
// directories (a tarball in /opt, a copy in a home folder) also yields that executable for inspection.
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { CollectContext, Collector, DesktopEntryRow, ExecutableRow, Row, UserHome } from '../types.js'
import { atRoot } from '../users.js'
import { byCodeUnit } from '../../../policies/canonical.js'

export const SYSTEM_APPLICATION_DIRS = [
  '/usr/share/applications',
  '/usr/local/share/applications',
  '/var/lib/snapd/desktop/applications',
  '/var/lib/flatpak/exports/share/applications',
]
export const USER_APPLICATION_DIRS = ['.local/share/applications', '.local/share/flatpak/exports/share/applications']

// Paths owned by the package managers: their binaries are covered by the package collectors.
const SYSTEM_PREFIXES = ['/usr/', '/bin/', '/sbin/', '/lib/', '/lib32/', '/lib64/', '/libx32/', '/etc/', '/snap/']
const SYSTEM_PREFIXES_MORE = ['/var/lib/snapd/', '/var/lib/flatpak/', '/nix/store/']

export interface DesktopEntry {
  type?: string
  name?: string
  exec?: string
  tryExec?: string
  startupWmClass?: string
}

/** Unescape a desktop-entry string value (pure): \s \n \t \r \\. */
function unescapeValue(v: string): string {
  return v.replace(/\\([sntr\\])/g, (_, c: string) => ({ s: ' ', n: '\n', t: '\t', r: '\r', '\\': '\\' })[c] ?? c)
}

/** Parse the [Desktop Entry] group of a .desktop file (pure). Localized keys (Name[de]) are ignored. */
export function parseDesktopEntry(text: string): DesktopEntry | undefined {
  const out: DesktopEntry = {}
  let inGroup = false
  let seen = false
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    if (line.startsWith('[')) {
      inGroup = line === '[Desktop Entry]'
      seen ||= inGroup
      continue
    }
    if (!inGroup) continue
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const key = line.slice(0, eq).trim()
    const value = unescapeValue(line.slice(eq + 1).trim())
    if (key === 'Type') out.type = value
    else if (key === 'Name') out.name = value
    else if (key === 'Exec') out.exec = value
    else if (key === 'TryExec') out.tryExec = value
    else if (key === 'StartupWMClass') out.startupWmClass = value
  }
  return seen ? out : undefined
}

/** Split an Exec value into arguments per the spec's quoting rules (pure). Field codes (%U) are kept. */
export function splitExec(exec: string): string[] {
  const args: string[] = []
  let cur = ''
  let quoted = false
  let inArg = false
  for (let i = 0; i < exec.length; i++) {
    const c = exec[i]!
    if (quoted) {
      if (c === '\\' && i + 1 < exec.length && '"`$\\'.includes(exec[i + 1]!)) cur += exec[++i]
      else if (c === '"') quoted = false
      else cur += c
    } else if (c === '"') {
      quoted = true
      inArg = true
    } else if (c === ' ' || c === '\t') {
      if (inArg) args.push(cur)
      cur = ''
      inArg = false
    } else {
      cur += c
      inArg = true
    }
  }
  if (inArg) args.push(cur)
  return args
}

/** The program an Exec line runs, skipping an `env VAR=value ...` prefix (pure). */
export function execProgram(exec: string): string | undefined {
  const args = splitExec(exec)
  let i = 0
  if (args[0] === 'env' || args[0]?.endsWith('/env')) {
    i = 1
    for (;;) {
      const a = args[i]
      if (a === '-u' || a === '--unset' || a === '-C' || a === '--chdir')
        i += 2 // options that take a value
      else if (a?.includes('=') || a?.startsWith('-')) i++
      else break
    }
  }
  return args[i]
}

export function isSystemPath(p: string): boolean {
  return SYSTEM_PREFIXES.some((s) => p.startsWith(s)) || SYSTEM_PREFIXES_MORE.some((s) => p.startsWith(s))
}

/**
 * Where an Exec program lives on disk, as candidate paths; undefined for programs in system directories. Bare
 * names are looked up only in the user's own bin folders: PATH lookups elsewhere land in system directories.
 */
export function execCandidates(program: string, root: string | undefined, home?: UserHome): string[] | undefined {
  const r = root && root !== '/' ? root.replace(/\/+$/, '') : ''
  if (program.startsWith('~/') || program.startsWith('$HOME/')) {
    return home ? [join(home.home, program.slice(program.indexOf('/') + 1))] : undefined
  }
  if (program.startsWith('/')) {
    // A fixture's entry may already name the file by its real (rooted) path.
    const logical = r && program.startsWith(`${r}/`) ? program.slice(r.length) : program
    if (isSystemPath(logical)) return undefined
    if (home && r && program.startsWith(`${home.home}/`)) return [program]
    return [r && program.startsWith(`${r}/`) ? program : atRoot(root, program)]
  }
  if (program.includes('/') || !home) return undefined
  return [join(home.home, '.local/bin', program), join(home.home, 'bin', program)]
}

interface Found {
  path: string
  desktopId: string
  home?: UserHome
}

async function walk(dir: string, prefix: string, depth: number, out: Found[], home?: UserHome) {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  await Promise.all(
    entries.map(async (e) => {
      const path = join(dir, e.name)
      if (e.isDirectory()) {
        // Subdirectories become a `-`-joined prefix of the desktop id (spec: kde4/foo.desktop -> kde4-foo).
        if (depth > 0) await walk(path, `${prefix}${e.name}-`, depth - 1, out, home)
      } else if (e.name.endsWith('.desktop') && (e.isFile() || e.isSymbolicLink())) {
        const found: Found = { path, desktopId: prefix + e.name.slice(0, -'.desktop'.length) }
        if (home) found.home = home
        out.push(found)
      }
    }),
  )
}

async function executableFor(
  ctx: CollectContext,
  candidates: string[],
  user?: string,
): Promise<ExecutableRow | undefined> {
  for (const c of candidates) {
    try {
      const s = await stat(c)
      if (!s.isFile()) continue
      const path = await realpath(c)
      const row: ExecutableRow = { kind: 'executable', path, source: 'desktop-entry', size: s.size }
      if (user) row.user = user
      const facts = await ctx.files.inspect(path)
      if (facts?.sha256) row.sha256 = facts.sha256
      if (facts?.markers?.length) row.markers = facts.markers
      return row
    } catch {}
  }
  return undefined
}

export async function desktopEntries(ctx: CollectContext): Promise<Row[]> {
  const found: Found[] = []
  await Promise.all([
    ...SYSTEM_APPLICATION_DIRS.map((d) => walk(atRoot(ctx.root, d), '', 2, found)),
    ...ctx.homes.flatMap((h) => USER_APPLICATION_DIRS.map((d) => walk(join(h.home, d), '', 2, found, h))),
  ])
  const rows: Row[] = []
  const executables = new Map<string, Promise<ExecutableRow | undefined>>()
  await Promise.all(
    found.map(async (f) => {
      let entry: DesktopEntry | undefined
      try {
        entry = parseDesktopEntry(await readFile(f.path, 'utf8'))
      } catch {
        return // dangling symlink or unreadable: nothing to report
      }
      if (!entry) return
      const row: DesktopEntryRow = { kind: 'desktop-entry', path: f.path, desktopId: f.desktopId }
      if (entry.name !== undefined) row.name = entry.name
      if (entry.exec !== undefined) row.exec = entry.exec
      if (entry.startupWmClass !== undefined) row.startupWmClass = entry.startupWmClass
      if (f.home) row.user = f.home.user
      rows.push(row)
      const program = entry.exec ? execProgram(entry.exec) : undefined
      const candidates = program ? execCandidates(program, ctx.root, f.home) : undefined
      if (!candidates) return
      const key = candidates.join('\0')
      if (!executables.has(key)) executables.set(key, executableFor(ctx, candidates, f.home?.user))
    }),
  )
  // Reads finish in any order: sort so scan output is stable.
  rows.sort((a, b) => byCodeUnit((a as DesktopEntryRow).path, (b as DesktopEntryRow).path))
  const seen = new Set<string>()
  for (const e of await Promise.all(executables.values())) {
    if (e && !seen.has(e.path)) {
      seen.add(e.path)
      rows.push(e)
    }
  }
  return rows
}

export const desktopEntriesCollector: Collector = {
  name: 'desktop-entries',
  os: ['linux'],
  collect: desktopEntries,
}
