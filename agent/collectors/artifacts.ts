// App data folders and files (e.g. Telegram's tdata) that exist for any user. Existence checks only: one stat per
// pattern and home, plus one directory listing per wildcard segment; never a recursive walk.
import { readdir, stat } from 'node:fs/promises'
import { posix, win32 } from 'node:path'
import type { Collector, ArtifactRow, UserHome } from './types.js'
import { atRoot } from './users.js'

const HOME_VARS: Record<string, string> = {
  '%APPDATA%': 'AppData/Roaming',
  '%LOCALAPPDATA%': 'AppData/Local',
  '%USERPROFILE%': '',
}
const SYSTEM_VARS: Record<string, string> = {
  '%PROGRAMFILES%': 'ProgramFiles',
  '%PROGRAMFILES(X86)%': 'ProgramFiles(x86)',
  '%PROGRAMDATA%': 'ProgramData',
}

function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\')
}

export interface ExpandedArtifact {
  path: string
  user?: string
}

/**
 * Expand one artifact pattern to concrete paths (pure): `~` and `%APPDATA%`/`%LOCALAPPDATA%`/`%USERPROFILE%` once per
 * home, absolute paths once (under `root`), `%PROGRAMFILES%`-style variables from `env`. Wildcards are left in place.
 */
export function expandArtifact(
  pattern: string,
  homes: readonly UserHome[],
  opts: { root?: string; env?: Record<string, string | undefined> } = {},
): ExpandedArtifact[] {
  const p = pattern.trim().replace(/\\/g, '/').replace(/\/+$/, '')
  if (!p || p === '/' || p === '~') return []
  const under = (home: string, rest: string) => {
    const join = isWindowsPath(home) ? win32.join : posix.join
    return join(home, rest)
  }
  if (p === '~' || p.startsWith('~/')) return homes.map((h) => ({ path: under(h.home, p.slice(2)), user: h.user }))
  const v = p.match(/^%[A-Za-z_()0-9]+%/)?.[0]
  if (v) {
    const rest = p.slice(v.length).replace(/^\//, '')
    const homeSub = HOME_VARS[v.toUpperCase()]
    if (homeSub !== undefined)
      return homes.map((h) => ({ path: under(h.home, posix.join(homeSub, rest)), user: h.user }))
    const envName = SYSTEM_VARS[v.toUpperCase()]
    const base = envName ? opts.env?.[envName] : undefined
    return base ? [{ path: win32.join(base, rest) }] : []
  }
  if (isWindowsPath(p)) return [{ path: win32.normalize(p) }]
  if (p.startsWith('/')) return [{ path: atRoot(opts.root, p) }]
  return [] // relative patterns name nothing in particular
}

function segmentRegExp(seg: string): RegExp {
  const re = seg
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*+/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${re}$`)
}

/** Resolve wildcard segments (`*`, `?`; `**` is one level, as there is no recursion) by listing the parent. */
async function existing(path: string): Promise<string[]> {
  const win = isWindowsPath(path)
  const sep = win ? '\\' : '/'
  const parts = path.split(/[\\/]/)
  const wild = parts.findIndex((s) => s.includes('*') || s.includes('?'))
  if (wild < 0) {
    try {
      await stat(path)
      return [path]
    } catch {
      return []
    }
  }
  const parent = parts.slice(0, wild).join(sep) || sep
  let names: string[]
  try {
    names = await readdir(parent)
  } catch {
    return []
  }
  const re = segmentRegExp(parts[wild]!)
  const rest = parts.slice(wild + 1)
  const found = await Promise.all(
    names.filter((n) => re.test(n)).map((n) => existing([parent === sep ? '' : parent, n, ...rest].join(sep))),
  )
  return found.flat()
}

export async function findArtifacts(
  patterns: readonly string[],
  homes: readonly UserHome[],
  root?: string,
): Promise<ArtifactRow[]> {
  const candidates = patterns.flatMap((p) => expandArtifact(p, homes, { root, env: process.env }))
  const rows: ArtifactRow[] = []
  const seen = new Set<string>()
  const found = await Promise.all(candidates.map(async (c) => ({ c, paths: await existing(c.path) })))
  for (const { c, paths } of found) {
    for (const path of paths) {
      if (seen.has(path)) continue
      seen.add(path)
      rows.push(c.user ? { kind: 'artifact', path, user: c.user } : { kind: 'artifact', path })
    }
  }
  return rows
}

export const artifactsCollector: Collector = {
  name: 'artifacts',
  os: ['linux', 'darwin', 'win32'],
  collect: (ctx) => findArtifacts(ctx.needs.artifacts, ctx.homes, ctx.root),
}
