// quarantine: move the banned executable (or the whole .app bundle) into a root-only vault, with a manifest that lets
// `restore` put it back exactly. The manifest is written before the move so a crash never loses track of a file.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import {
  chmod,
  chown,
  constants,
  copyFile,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import type { Os } from '../collectors/types.js'
import { checkEvidence, checkMovablePath, pathOf, type SafetyContext } from './safety.js'
import {
  type ActionResult,
  baseOf,
  done,
  errMessage,
  failed,
  type Finding,
  noop,
  type ResultBase,
  refused,
  type Signal,
} from './types.js'

export interface QuarantineEntry {
  /** Path relative to the bundle root ('' is the root itself). */
  rel: string
  type: 'file' | 'dir' | 'symlink'
  mode: number
  uid: number
  gid: number
  mtimeMs: number
  atimeMs: number
  size?: number
  sha256?: string
  target?: string
}

export interface QuarantineManifest {
  id: string
  originalPath: string
  kind: 'file' | 'dir'
  uid: number
  gid: number
  /** Permission bits including setuid/setgid/sticky (st_mode & 07777). */
  mode: number
  mtimeMs: number
  atimeMs: number
  /** A file's SHA-256, or for a bundle the hash of its sorted entry list (see treeHash). */
  sha256: string
  size: number
  quarantinedAt: string
  method?: 'rename' | 'copy'
  app?: { id: string; name: string; policy: string }
  signal?: Signal
  matched?: string
  subject?: string
  /** Bundles: every entry's metadata, so restore can put back modes, owners and times throughout. */
  entries?: QuarantineEntry[]
}

export interface QuarantineOptions {
  stateDir: string
  os?: Os
  /** Move this instead of the path the finding names (e.g. the AppImage behind a running process's mount). */
  target?: string
  /** Tests: behave as if rename crossed file systems. */
  forceCopy?: boolean
}

const ID_RE = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/

export function vaultDir(stateDir: string): string {
  return path.join(stateDir, 'quarantine')
}

function newId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `${stamp}-${randomBytes(4).toString('hex')}`
}

function currentOs(): Os {
  return process.platform === 'darwin' || process.platform === 'win32' ? process.platform : 'linux'
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * macOS: the outermost `.app` bundle containing the path (moving only Contents/MacOS/x leaves a broken bundle that
 * a user could repair); elsewhere the path itself.
 */
export function bundleRootOf(p: string, os: Os): string {
  if (os !== 'darwin') return p
  const parts = p.split('/')
  const i = parts.findIndex((s) => s.toLowerCase().endsWith('.app'))
  return i > 0 ? parts.slice(0, i + 1).join('/') : p
}

/** Linux: a running AppImage's exe lives in its read-only FUSE mount; the file to move is in its APPIMAGE variable. */
export async function appImageOf(pid: number, procRoot = '/proc'): Promise<string | undefined> {
  try {
    const env = await readFile(`${procRoot}/${pid}/environ`, 'latin1')
    const v = env.split('\0').find((e) => e.startsWith('APPIMAGE='))
    return v ? v.slice('APPIMAGE='.length) : undefined
  } catch {
    return undefined
  }
}

/** What quarantine will move for this finding (resolved while a process still lives, for AppImages). */
export async function quarantineTarget(finding: Finding, os: Os = currentOs()): Promise<string | undefined> {
  const p = pathOf(finding)
  if (!p) return undefined
  const row = finding.row
  if (os === 'linux' && row.kind === 'process' && /\/\.mount_[^/]+\//.test(p)) return appImageOf(row.pid)
  if (row.kind === 'executable' || row.kind === 'app-bundle') return row.kind === 'app-bundle' ? p : bundleRootOf(p, os)
  return bundleRootOf(p, os)
}

async function walk(root: string): Promise<QuarantineEntry[]> {
  const out: QuarantineEntry[] = []
  const visit = async (rel: string) => {
    const abs = rel ? path.join(root, rel) : root
    const st = await lstat(abs)
    const meta = {
      rel,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtimeMs: st.mtimeMs,
      atimeMs: st.atimeMs,
    }
    if (st.isSymbolicLink()) out.push({ ...meta, type: 'symlink', target: await readlink(abs) })
    else if (st.isDirectory()) {
      out.push({ ...meta, type: 'dir' })
      for (const name of (await readdir(abs)).sort()) await visit(rel ? path.join(rel, name) : name)
    } else if (st.isFile()) out.push({ ...meta, type: 'file', size: st.size, sha256: await sha256File(abs) })
    // Sockets, fifos and devices inside a bundle are not content: skipped.
  }
  await visit('')
  return out
}

/** A bundle's identity: hash over sorted (type, path, content hash or link target); metadata is not content. */
export function treeHash(entries: readonly QuarantineEntry[]): string {
  const h = createHash('sha256')
  for (const e of [...entries].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))) {
    h.update(`${e.type}\0${e.rel}\0${e.sha256 ?? e.target ?? ''}\n`)
  }
  return h.digest('hex')
}

async function contentHash(p: string, kind: 'file' | 'dir'): Promise<string> {
  return kind === 'file' ? sha256File(p) : treeHash(await walk(p))
}

async function fsyncPath(p: string, flags = 'r') {
  const fh = await open(p, flags)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Copy a file or tree (no metadata needed: the manifest has it), fsynced so the unlink of the source is safe. */
async function copyDurable(src: string, dst: string, exclusive: boolean): Promise<void> {
  const st = await lstat(src)
  if (st.isSymbolicLink()) await symlink(await readlink(src), dst)
  else if (st.isDirectory()) {
    await mkdir(dst, { mode: 0o700 })
    for (const name of await readdir(src)) await copyDurable(path.join(src, name), path.join(dst, name), exclusive)
    await fsyncPath(dst).catch(() => {}) // directory fsync is not supported everywhere
  } else if (st.isFile()) {
    await copyFile(src, dst, exclusive ? constants.COPYFILE_EXCL : 0)
    await fsyncPath(dst)
  }
}

/** rename, or across file systems copy + fsync + verify hash + remove the source. */
async function move(
  src: string,
  dst: string,
  kind: 'file' | 'dir',
  sha: string,
  forceCopy: boolean,
): Promise<'rename' | 'copy'> {
  if (!forceCopy) {
    try {
      await rename(src, dst)
      return 'rename'
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
    }
  }
  try {
    await copyDurable(src, dst, true)
    const got = await contentHash(dst, kind)
    if (got !== sha) throw new Error(`copy verification failed: ${got} != ${sha}`)
  } catch (err) {
    await rm(dst, { recursive: true, force: true })
    throw err
  }
  await rm(src, { recursive: kind === 'dir', force: false })
  return 'copy'
}

/** No exec, setuid or setgid bits on anything in the vault (directories keep x so the tree stays traversable). */
async function stripExec(p: string, kind: 'file' | 'dir') {
  if (kind === 'file') return chmod(p, 0o600)
  for (const e of await walk(p)) {
    const abs = e.rel ? path.join(p, e.rel) : p
    if (e.type === 'file') await chmod(abs, e.mode & 0o666)
    else if (e.type === 'dir') await chmod(abs, 0o700)
  }
}

/** The vault root and entry directories: 0700, owned by the agent's user, whatever umask or earlier owner said. */
async function ensurePrivateDir(dir: string) {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  if (typeof process.getuid === 'function' && typeof process.getgid === 'function') {
    const st = await stat(dir)
    if (st.uid !== process.getuid() || st.gid !== process.getgid()) await chown(dir, process.getuid(), process.getgid())
  }
}

export async function listQuarantine(stateDir: string): Promise<QuarantineManifest[]> {
  const root = vaultDir(stateDir)
  let names: string[]
  try {
    names = await readdir(root)
  } catch {
    return []
  }
  const out: QuarantineManifest[] = []
  for (const name of names.filter((n) => ID_RE.test(n)).sort()) {
    try {
      out.push(JSON.parse(await readFile(path.join(root, name, 'manifest.json'), 'utf8')) as QuarantineManifest)
    } catch {} // an entry whose move never started has no manifest; nothing to list or restore
  }
  return out
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** Quarantine what a finding names. */
export async function quarantine(
  finding: Finding,
  safety: SafetyContext,
  opts: QuarantineOptions,
): Promise<ActionResult> {
  const base = baseOf('quarantine', finding)
  const missing = checkEvidence('quarantine', finding)
  if (missing) return refused(base, missing)
  const os = opts.os ?? safety.os
  const target = opts.target ?? (await quarantineTarget(finding, os))
  if (!target) return refused(base, 'cannot tell which file to move (AppImage mount without APPIMAGE)')
  const rowSha = 'sha256' in finding.row ? finding.row.sha256 : undefined
  return quarantinePath(target, safety, {
    ...opts,
    base,
    signal: finding.signal,
    expectSha256: finding.signal === 'sha256' ? (rowSha ?? finding.matched) : undefined,
    meta: {
      app: { id: finding.appId, name: finding.appName, policy: finding.policy },
      signal: finding.signal,
      matched: finding.matched,
      subject: finding.subject,
    },
  })
}

export interface QuarantinePathOptions extends QuarantineOptions {
  base?: ResultBase
  signal: Signal
  /** For hash-matched findings: the file must still have this hash (it may have been replaced since the scan). */
  expectSha256?: string
  meta?: Pick<QuarantineManifest, 'app' | 'signal' | 'matched' | 'subject'>
}

export async function quarantinePath(
  target: string,
  safety: SafetyContext,
  opts: QuarantinePathOptions,
): Promise<ActionResult> {
  const base = opts.base ?? { action: 'quarantine' as const, subject: `file:${target}` }
  const why = await checkMovablePath(target, opts.signal, safety)
  if (why) return refused(base, why, { path: target })

  let st: Awaited<ReturnType<typeof lstat>>
  try {
    st = await lstat(target)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return failed(base, errMessage(err), { path: target })
    const prior = (await listQuarantine(opts.stateDir)).filter((m) => m.originalPath === target).at(-1)
    if (prior) {
      return noop(base, `already quarantined as ${prior.id}`, {
        path: target,
        sha256: prior.sha256,
        quarantineId: prior.id,
      })
    }
    return noop(base, 'not present', { path: target })
  }
  if (st.isSymbolicLink()) {
    // Moving a link leaves the program in place; its target is what must go (and pass the rails itself).
    const { realpath } = await import('node:fs/promises')
    const real = await realpath(target).catch(() => undefined)
    if (!real) return noop(base, 'dangling symlink: nothing to move', { path: target })
    return quarantinePath(real, safety, { ...opts, base })
  }
  const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : undefined
  if (!kind) return refused(base, `${target} is not a regular file or directory`, { path: target })

  let entries: QuarantineEntry[] | undefined
  let sha: string
  let size = st.size
  try {
    if (kind === 'dir') {
      entries = await walk(target)
      sha = treeHash(entries)
      size = entries.reduce((n, e) => n + (e.size ?? 0), 0)
    } else sha = await sha256File(target)
  } catch (err) {
    return failed(base, `cannot read ${target}: ${errMessage(err)}`, { path: target })
  }
  if (opts.expectSha256 && kind === 'file' && sha !== opts.expectSha256) {
    return refused(base, `${target} changed since it matched (sha256 ${sha}, expected ${opts.expectSha256})`, {
      path: target,
      sha256: sha,
    })
  }

  const prior = (await listQuarantine(opts.stateDir)).find((m) => m.originalPath === target && m.sha256 === sha)
  if (prior) {
    // The same bytes came back (re-downloaded): the vault already holds them, so the new copy is simply removed.
    try {
      await rm(target, { recursive: kind === 'dir' })
    } catch (err) {
      return failed(base, `cannot remove reappeared ${target}: ${errMessage(err)}`, { path: target, sha256: sha })
    }
    return done(base, `already in the vault as ${prior.id}; removed the reappeared copy`, {
      path: target,
      sha256: sha,
      quarantineId: prior.id,
    })
  }

  const id = newId()
  const root = vaultDir(opts.stateDir)
  const dir = path.join(root, id)
  const payload = path.join(dir, 'payload')
  const manifest: QuarantineManifest = {
    id,
    originalPath: target,
    kind,
    uid: st.uid,
    gid: st.gid,
    mode: st.mode & 0o7777,
    mtimeMs: st.mtimeMs,
    atimeMs: st.atimeMs,
    sha256: sha,
    size,
    quarantinedAt: new Date().toISOString(),
    ...opts.meta,
    entries,
  }
  try {
    await ensurePrivateDir(root)
    await ensurePrivateDir(dir)
    const manifestPath = path.join(dir, 'manifest.json')
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2), { mode: 0o600 })
    manifest.method = await move(target, payload, kind, sha, opts.forceCopy ?? false)
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2), { mode: 0o600 })
    await stripExec(payload, kind)
  } catch (err) {
    // Nothing was moved (move cleans up its partial copy): drop the entry so list/restore never see it.
    if (await exists(target)) await rm(dir, { recursive: true, force: true })
    return failed(base, `quarantine of ${target} failed: ${errMessage(err)}`, { path: target, sha256: sha })
  }
  return done(base, `moved ${target} to the vault as ${id}`, { path: target, sha256: sha, quarantineId: id })
}

async function applyMeta(abs: string, e: Omit<QuarantineEntry, 'rel'>) {
  const atime = e.atimeMs / 1000
  const mtime = e.mtimeMs / 1000
  if (e.type === 'symlink') {
    await lchown(abs, e.uid, e.gid)
    await lutimes(abs, atime, mtime).catch(() => {})
    return
  }
  // chown before chmod: chown clears setuid/setgid bits.
  await chown(abs, e.uid, e.gid)
  await chmod(abs, e.mode)
  await utimes(abs, atime, mtime)
}

/** Put a vaulted file back exactly (bytes, mode, owner, times); never over an existing file. */
export async function restoreQuarantine(stateDir: string, id: string): Promise<ActionResult> {
  const base: ResultBase = { action: 'quarantine', subject: `quarantine:${id}` }
  if (!ID_RE.test(id)) return refused(base, `invalid quarantine id ${JSON.stringify(id)}`)
  const dir = path.join(vaultDir(stateDir), id)
  let m: QuarantineManifest
  try {
    m = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as QuarantineManifest
  } catch {
    return failed(base, `no quarantine entry ${id}`)
  }
  const extra = { path: m.originalPath, sha256: m.sha256, quarantineId: id }
  const payload = path.join(dir, 'payload')
  if (!(await exists(payload))) return failed(base, `vault entry ${id} has no payload`, extra)
  if (await exists(m.originalPath)) return refused(base, `${m.originalPath} exists; not overwriting it`, extra)
  try {
    await mkdir(path.dirname(m.originalPath), { recursive: true, mode: 0o755 })
    if (m.kind === 'file') {
      // link() fails if the name was taken meanwhile: never overwrite, even in a race.
      try {
        await link(payload, m.originalPath)
        await unlink(payload)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') return refused(base, `${m.originalPath} exists; not overwriting it`, extra)
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw err
        await copyDurable(payload, m.originalPath, true)
      }
      await applyMeta(m.originalPath, { ...m, type: 'file' })
    } else {
      try {
        await rename(payload, m.originalPath)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
        await copyDurable(payload, m.originalPath, true)
      }
      // Deepest first: setting a child's metadata would bump its directory's mtime.
      const depth = (e: QuarantineEntry) => (e.rel ? e.rel.split('/').length : 0)
      const entries = [...(m.entries ?? [])].sort((a, b) => depth(b) - depth(a))
      for (const e of entries) await applyMeta(e.rel ? path.join(m.originalPath, e.rel) : m.originalPath, e)
    }
    const got = await contentHash(m.originalPath, m.kind)
    if (got !== m.sha256) return failed(base, `restored content hash ${got} != ${m.sha256}`, extra)
  } catch (err) {
    return failed(base, `restore of ${id} failed: ${errMessage(err)}`, extra)
  }
  await rm(dir, { recursive: true, force: true })
  return done(base, `restored ${id} to ${m.originalPath}`, extra)
}
