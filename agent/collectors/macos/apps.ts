// macOS .app bundles in /Applications (one level of subfolders, which covers Utilities and vendor folders) and every
// user's ~/Applications, identified by Info.plist (XML or binary) and, on a Mac, by their code signature.
import type { Dirent } from 'node:fs'
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { AppBundleRow, CollectContext, Collector } from '../types.js'
import { atRoot } from '../users.js'
import { type CodeSignInfo, type CodesignRunner, runCodesign } from './codesign.js'
import { type PlistDict, parsePlistDict } from './plist.js'

export const MAC_APP_DIRS = ['/Applications']
/** Levels of plain folders searched below each applications folder (`/Applications/Utilities/X.app`). */
const SUBFOLDER_DEPTH = 1
const CODESIGN_CONCURRENCY = 4
const MAX_BUNDLES_PER_DIR = 5000
const MAX_PLIST_BYTES = 4 * 1024 * 1024

export interface BundleInfo {
  bundleId?: string
  name?: string
  version?: string
  /** CFBundleExecutable: a file name inside Contents/MacOS. */
  executableName?: string
}

const str = (d: PlistDict, k: string) => {
  const v = d[k]
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined
}

/** The identifying fields of an Info.plist dictionary (pure). */
export function bundleInfo(plist: PlistDict): BundleInfo {
  const out: BundleInfo = {}
  const id = str(plist, 'CFBundleIdentifier')
  const name = str(plist, 'CFBundleDisplayName') ?? str(plist, 'CFBundleName')
  const version = str(plist, 'CFBundleShortVersionString') ?? str(plist, 'CFBundleVersion')
  const exe = str(plist, 'CFBundleExecutable')
  if (id) out.bundleId = id
  if (name) out.name = name
  if (version) out.version = version
  // A file name only: a hostile plist must not point the inspector at some other file.
  if (exe && !exe.includes('/') && exe !== '..' && exe !== '.') out.executableName = exe
  return out
}

/** Read one bundle's Info.plist into a row. Throws (with the bundle path in the message) when it is missing or bad. */
export async function readAppBundle(path: string, user?: string): Promise<AppBundleRow> {
  const plistPath = join(path, 'Contents', 'Info.plist')
  let info: BundleInfo
  try {
    // Real Info.plists are a few KB; a huge one is hostile or broken, and is not worth reading into memory.
    if ((await stat(plistPath)).size > MAX_PLIST_BYTES) throw new Error('Info.plist larger than 4 MB')
    info = bundleInfo(parsePlistDict(await readFile(plistPath)))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'no Contents/Info.plist' : e.message
    throw new Error(`${path}: ${why}`)
  }
  const row: AppBundleRow = { kind: 'app-bundle', path }
  if (info.bundleId) row.bundleId = info.bundleId
  row.name = info.name ?? basename(path, '.app')
  if (info.version) row.version = info.version
  if (info.executableName) row.executable = join(path, 'Contents', 'MacOS', info.executableName)
  if (user) row.user = user
  return row
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}

/** `*.app` directories in dir and in plain folders below it (to `depth` levels); bundles are never descended. */
export async function findAppBundles(dir: string, depth = SUBFOLDER_DEPTH): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string, left: number) => {
    let entries: Dirent[]
    try {
      entries = await readdir(d, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (out.length >= MAX_BUNDLES_PER_DIR) return
      if (e.name.startsWith('.')) continue
      const p = join(d, e.name)
      // Symlinked bundles (Xcode-style installs) count; stat follows the link.
      if (!(e.isDirectory() || (e.isSymbolicLink() && (await isDir(p))))) continue
      if (e.name.toLowerCase().endsWith('.app')) out.push(p)
      else if (left > 0 && e.isDirectory()) await walk(p, left - 1)
    }
  }
  await walk(dir, depth)
  return out
}

// Signatures cached by bundle path and executable identity: a daemon re-scanning unchanged apps never re-runs codesign.
const signCache = new Map<string, CodeSignInfo | undefined>()

async function signatureOf(row: AppBundleRow, run: CodesignRunner): Promise<CodeSignInfo | undefined> {
  let key = row.path
  try {
    const s = await stat(row.executable ?? row.path)
    key = `${row.path}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`
  } catch {}
  if (signCache.has(key)) return signCache.get(key)
  const info = await run(row.path)
  if (info) {
    if (signCache.size > 2000) signCache.clear()
    signCache.set(key, info)
  }
  return info
}

/** Apple's own apps: their signature says Apple, which no policy bans; skipping them saves most codesign runs. */
const isApple = (row: AppBundleRow) => row.bundleId?.startsWith('com.apple.') === true

export interface MacAppsOptions {
  /** Signature reader: default the real codesign on darwin, none elsewhere; `false` disables it. */
  codesign?: CodesignRunner | false
}

export interface MacAppsResult {
  rows: AppBundleRow[]
  /** Bundles skipped, each with why (unreadable or malformed Info.plist). */
  problems: string[]
}

export async function collectAppBundles(ctx: CollectContext, opts: MacAppsOptions = {}): Promise<MacAppsResult> {
  const run = opts.codesign ?? (process.platform === 'darwin' ? runCodesign : false)
  const roots: { dir: string; user?: string }[] = [
    ...MAC_APP_DIRS.map((d) => ({ dir: atRoot(ctx.root, d) })),
    ...ctx.homes.map((h) => ({ dir: join(h.home, 'Applications'), user: h.user })),
  ]
  const rows: AppBundleRow[] = []
  const problems: string[] = []
  const seen = new Set<string>()
  for (const root of roots) {
    for (const path of await findAppBundles(root.dir)) {
      let real = path
      try {
        real = await realpath(path)
      } catch {}
      if (seen.has(real)) continue
      seen.add(real)
      try {
        rows.push(await readAppBundle(path, root.user))
      } catch (err) {
        problems.push((err as Error).message)
      }
    }
  }
  const deep = ctx.needs.hashes || ctx.needs.markers.length > 0
  const enrich = async (row: AppBundleRow) => {
    if (run && !isApple(row)) {
      const sig = await signatureOf(row, run)
      if (sig?.teamId) row.teamId = sig.teamId
      if (sig?.signer) row.signer = sig.signer
    }
    if (deep && row.executable) {
      const facts = await ctx.files.inspect(row.executable)
      if (facts?.sha256) row.sha256 = facts.sha256
      if (facts?.markers?.length) row.markers = facts.markers
    }
  }
  // A few at a time: codesign is a process per bundle, and hashing reads whole executables.
  for (let i = 0; i < rows.length; i += CODESIGN_CONCURRENCY) {
    await Promise.all(rows.slice(i, i + CODESIGN_CONCURRENCY).map(enrich))
  }
  return { rows, problems }
}

export const macosAppsCollector: Collector = {
  name: 'macos-apps',
  os: ['darwin'],
  async collect(ctx) {
    const { rows, problems } = await collectAppBundles(ctx)
    for (const p of problems) ctx.warn?.(`macos-apps: skipped ${p}`)
    return rows
  },
}

/**
 * The .app bundle an executable belongs to (the outermost `X.app/Contents/MacOS/...`), with its Info.plist fields:
 * lets the process collector give a running process its bundle id. Undefined outside bundles or on a bad plist.
 */
export async function appBundleOf(exePath: string): Promise<AppBundleRow | undefined> {
  const i = exePath.indexOf('.app/Contents/')
  if (i < 0) return undefined
  const bundle = exePath.slice(0, i + 4)
  if (!(await isDir(bundle))) return undefined
  try {
    return await readAppBundle(bundle)
  } catch {
    return undefined
  }
}
