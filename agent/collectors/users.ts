// User accounts and their home folders: where per-user installs, portable copies and app data live.
import { readFileSync, statSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, win32 } from 'node:path'
import type { Os, UserHome } from './types.js'

export interface PasswdEntry {
  user: string
  uid: number
  gid: number
  home: string
  shell: string
}

/** Parse /etc/passwd text (pure). Malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const f = line.split(':')
    if (f.length < 7) continue
    const uid = Number(f[2])
    const gid = Number(f[3])
    if (!f[0] || !Number.isInteger(uid)) continue
    out.push({ user: f[0], uid, gid, home: f[5] ?? '', shell: f[6] ?? '' })
  }
  return out
}

/** Join an absolute system path onto a fixture root (identity when root is `/` or unset). */
export function atRoot(root: string | undefined, path: string): string {
  return !root || root === '/' ? path : join(root, path)
}

// uid -> name, reloaded only when /etc/passwd changes (processes look this up for every pid).
let passwdCache: { key: string; byUid: Map<number, string> } | undefined

/** Map of uid to user name from /etc/passwd (sync and cached: it is consulted per process). */
export function userNamesByUid(root?: string): Map<number, string> {
  const file = atRoot(root, '/etc/passwd')
  let key: string
  try {
    const s = statSync(file)
    key = `${file}:${s.ino}:${s.mtimeMs}:${s.size}`
  } catch {
    return new Map()
  }
  if (passwdCache?.key === key) return passwdCache.byUid
  const byUid = new Map<number, string>()
  try {
    // First entry wins, as getpwuid does.
    for (const e of parsePasswd(readFileSync(file, 'utf8'))) if (!byUid.has(e.uid)) byUid.set(e.uid, e.user)
  } catch {
    return byUid
  }
  passwdCache = { key, byUid }
  return byUid
}

const NOT_HOMES = new Set(['/', '/nonexistent', '/dev/null', '/var/empty', '/bin', '/usr/sbin', '/sbin'])
// Regular accounts start at UID_MIN (1000 on every mainstream distro); 65534 is nobody.
const UID_MIN = 1000
const NOBODY = 65534

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}

export interface ListHomesOptions {
  os?: Os
  /** Fixture root for /etc/passwd, /home, /Users (Linux and macOS). Returned homes include the root prefix. */
  root?: string
}

async function linuxHomes(root: string | undefined): Promise<UserHome[]> {
  const out: UserHome[] = []
  const seen = new Set<string>()
  let entries: PasswdEntry[] = []
  try {
    entries = parsePasswd(await readFile(atRoot(root, '/etc/passwd'), 'utf8'))
  } catch {
    // no passwd (minimal container): fall back to /home below
  }
  for (const e of entries) {
    if (!(e.uid === 0 || (e.uid >= UID_MIN && e.uid !== NOBODY))) continue
    if (!e.home.startsWith('/') || NOT_HOMES.has(e.home)) continue
    const home = atRoot(root, e.home)
    if (seen.has(home) || !(await isDir(home))) continue
    seen.add(home)
    out.push({ user: e.user, uid: e.uid, home })
  }
  // Directory users (LDAP, SSSD) are not in /etc/passwd but still have a folder under /home.
  for (const base of ['/home', '/var/home']) {
    let names: string[]
    try {
      names = await readdir(atRoot(root, base))
    } catch {
      continue
    }
    for (const name of names) {
      const home = join(atRoot(root, base), name)
      if (name.startsWith('.') || name === 'lost+found' || seen.has(home) || !(await isDir(home))) continue
      seen.add(home)
      let uid: number | undefined
      try {
        uid = (await stat(home)).uid
      } catch {}
      out.push(uid === undefined ? { user: name, home } : { user: name, uid, home })
    }
  }
  return out
}

async function dirHomes(base: string, skip: Set<string>): Promise<UserHome[]> {
  let names: string[]
  try {
    names = await readdir(base)
  } catch {
    return []
  }
  const out: UserHome[] = []
  for (const name of names) {
    if (name.startsWith('.') || skip.has(name.toLowerCase())) continue
    const home = join(base, name)
    if (await isDir(home)) out.push({ user: name, home })
  }
  return out
}

const MAC_SKIP = new Set(['shared', 'guest'])
const WIN_SKIP = new Set(['public', 'default', 'default user', 'all users', 'defaultapppool', 'wdagutilityaccount'])

/** Every local user's home folder that exists. */
export async function listUserHomes(opts: ListHomesOptions = {}): Promise<UserHome[]> {
  const os = opts.os ?? (process.platform as Os)
  if (os === 'darwin') return dirHomes(atRoot(opts.root, '/Users'), MAC_SKIP)
  if (os === 'win32') {
    const base = opts.root ? join(opts.root, 'Users') : win32.join(process.env.SystemDrive ?? 'C:', '\\Users')
    return dirHomes(base, WIN_SKIP)
  }
  return linuxHomes(opts.root)
}
