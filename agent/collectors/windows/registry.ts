// Windows uninstall keys ("Programs and Features"): HKLM, HKLM\WOW6432Node and every loaded user hive under HKU, read
// through `reg query /s` (always present, no PowerShell start-up cost). Also reads regedit `.reg` exports, so an
// offline image or a support bundle can be checked with the same code.
import { execFile } from 'node:child_process'
import { win32 } from 'node:path'
import type { Collector, WindowsProgramRow } from '../types.js'

export type RegValue = string | number | bigint | string[]

export interface RegKey {
  /** Full path with the long hive name, e.g. `HKEY_LOCAL_MACHINE\SOFTWARE\...\{53F49750-...}_is1`. */
  path: string
  /** Values by lower-cased name (registry names are case-insensitive); the default value is `''`. */
  values: Map<string, { name: string; type: string; value: RegValue }>
}

const HIVE_ALIASES: Record<string, string> = {
  HKLM: 'HKEY_LOCAL_MACHINE',
  HKCU: 'HKEY_CURRENT_USER',
  HKU: 'HKEY_USERS',
  HKCR: 'HKEY_CLASSES_ROOT',
  HKCC: 'HKEY_CURRENT_CONFIG',
}

/** `HKLM\X` -> `HKEY_LOCAL_MACHINE\X` (key paths compare in long form). */
export function longKeyPath(path: string): string {
  const i = path.indexOf('\\')
  const hive = (i < 0 ? path : path.slice(0, i)).toUpperCase()
  return (HIVE_ALIASES[hive] ?? hive) + (i < 0 ? '' : path.slice(i))
}

const REG_TYPES =
  'REG_SZ|REG_EXPAND_SZ|REG_MULTI_SZ|REG_DWORD|REG_QWORD|REG_BINARY|REG_NONE|REG_LINK|REG_DWORD_BIG_ENDIAN|' +
  'REG_RESOURCE_LIST|REG_FULL_RESOURCE_DESCRIPTOR|REG_RESOURCE_REQUIREMENTS_LIST'
// `    <name>    <TYPE>    <data>`: names may contain spaces (`Inno Setup: App Path`), so anchor on the type token.
const VALUE_LINE = new RegExp(`^ {4}(.*?) {4}(${REG_TYPES})(?: {4}(.*))?$`)
const HIVE_LINE = /^HKEY_[A-Z_]+(?:\\|$)/

function hexNumber(s: string): number | bigint {
  const b = BigInt(s.trim())
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b
}

/**
 * Parse `reg query KEY [/s]` output (pure): key lines start with `HKEY_`, value lines are indented by four spaces.
 * The unnamed default value prints as `(Default)` (localised on non-English Windows; any parenthesised name with no
 * matching real value is taken as the default only when it is the first value of the key).
 */
export function parseRegQuery(text: string): RegKey[] {
  const keys: RegKey[] = []
  let cur: RegKey | undefined
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const line = raw.replace(/\r$/, '')
    if (line === '') continue
    if (HIVE_LINE.test(line)) {
      cur = { path: line.trimEnd(), values: new Map() }
      keys.push(cur)
      continue
    }
    const m = VALUE_LINE.exec(line)
    if (!m || !cur) continue // "End of search", errors and anything unrecognised
    let name = m[1]!
    const type = m[2]!
    const data = m[3] ?? ''
    // reg lists the default value first; other languages translate `(Default)` (`(Standard)`, `(По умолчанию)`).
    if (name === '(Default)' || (cur.values.size === 0 && /^\([^()]+\)$/.test(name))) name = ''
    let value: RegValue = data
    if (type === 'REG_DWORD' || type === 'REG_QWORD' || type === 'REG_DWORD_BIG_ENDIAN') {
      value = /^0x[0-9a-fA-F]+$/.test(data.trim()) ? hexNumber(data) : data
    } else if (type === 'REG_MULTI_SZ') {
      value = data === '' ? [] : data.split('\\0').filter((s, i, a) => s !== '' || i < a.length - 1)
    } else if (name === '' && type === 'REG_SZ' && /^\(value not set\)$/.test(data)) {
      continue // an unset default value: reg prints a placeholder, not data
    }
    cur.values.set(name.toLowerCase(), { name, type, value })
  }
  return keys
}

/** Decode a `.reg` file's bytes: UTF-16LE with BOM (regedit 5.00) or ANSI/UTF-8 (REGEDIT4). */
export function decodeRegFile(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf[0] === 0xff && buf[1] === 0xfe) return buf.toString('utf16le', 2)
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.toString('utf8', 3)
  return buf.toString('utf8')
}

function hexBytes(s: string): Buffer {
  const parts = s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
  const out = Buffer.alloc(parts.length)
  parts.forEach((p, i) => {
    if (!/^[0-9a-fA-F]{1,2}$/.test(p)) throw new Error(`bad hex byte "${p}"`)
    out[i] = Number.parseInt(p, 16)
  })
  return out
}

const utf16z = (b: Buffer) => b.toString('utf16le', 0, b.length - (b.length % 2)).replace(/\0+$/, '')

/** Unescape a regedit quoted string body (`\\` and `\"`). */
function unquote(s: string): string {
  return s.replace(/\\(.)/g, '$1')
}

/** Parse the text of a regedit export (pure). Deletions (`[-KEY]`, `"x"=-`) are skipped. */
export function parseRegFile(text: string): RegKey[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  if (!/^(?:Windows Registry Editor Version 5\.00|REGEDIT4)\s*$/.test(lines[0] ?? '')) {
    throw new Error('not a .reg file: missing "Windows Registry Editor Version 5.00" header')
  }
  const keys: RegKey[] = []
  let cur: RegKey | undefined
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i]!.trimEnd()
    // Long hex values continue on the next lines after a trailing backslash.
    while (
      /^"(?:[^"\\]|\\.)*"=hex(?:\([0-9a-fA-F]+\))?:.*\\$/.test(line) ||
      (/^@=hex/.test(line) && line.endsWith('\\'))
    ) {
      line = line.slice(0, -1) + (lines[++i] ?? '').trim()
    }
    if (line === '' || line.startsWith(';')) continue
    if (line.startsWith('[')) {
      const path = line.slice(1, line.lastIndexOf(']'))
      cur = path.startsWith('-') ? undefined : { path: longKeyPath(path), values: new Map() }
      if (cur) keys.push(cur)
      continue
    }
    if (!cur) continue
    const m = /^(?:"((?:[^"\\]|\\.)*)"|(@))=(.*)$/.exec(line)
    if (!m) continue
    const name = m[2] ? '' : unquote(m[1]!)
    const raw = m[3]!
    let type: string
    let value: RegValue
    if (raw === '-') continue
    if (raw.startsWith('"')) {
      type = 'REG_SZ'
      value = unquote(raw.slice(1, raw.lastIndexOf('"')))
    } else if (raw.startsWith('dword:')) {
      type = 'REG_DWORD'
      value = Number.parseInt(raw.slice(6), 16)
    } else {
      const h = /^hex(?:\(([0-9a-fA-F]+)\))?:(.*)$/.exec(raw)
      if (!h) continue
      const kind = h[1] === undefined ? 3 : Number.parseInt(h[1], 16)
      const bytes = hexBytes(h[2]!)
      switch (kind) {
        case 1:
          type = 'REG_SZ'
          value = utf16z(bytes)
          break
        case 2:
          type = 'REG_EXPAND_SZ'
          value = utf16z(bytes)
          break
        case 4:
          type = 'REG_DWORD'
          value = bytes.length >= 4 ? bytes.readUInt32LE(0) : 0
          break
        case 7:
          type = 'REG_MULTI_SZ'
          value = bytes
            .toString('utf16le', 0, bytes.length - (bytes.length % 2))
            .split('\0')
            .filter((s) => s !== '')
          break
        case 0xb: {
          type = 'REG_QWORD'
          const q = bytes.length >= 8 ? bytes.readBigUInt64LE(0) : 0n
          value = q <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(q) : q
          break
        }
        default:
          type = kind === 3 ? 'REG_BINARY' : kind === 0 ? 'REG_NONE' : `REG_TYPE_${kind}`
          value = bytes.toString('hex')
      }
    }
    cur.values.set(name.toLowerCase(), { name, type, value })
  }
  return keys
}

// ---------------------------------------------------------------------------------------------------------------

export const UNINSTALL = 'SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall'
export const UNINSTALL_WOW = 'SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall'
export const PROFILE_LIST = 'SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList'

const str = (k: RegKey, name: string): string | undefined => {
  const v = k.values.get(name)?.value
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined
}

export interface HiveScope {
  hive: WindowsProgramRow['hive']
  sid?: string
  user?: string
}

/** The direct subkeys of `uninstallPath` as rows (pure). Keys without any values are noise from `/s` and skipped. */
export function uninstallRows(keys: RegKey[], uninstallPath: string, scope: HiveScope): WindowsProgramRow[] {
  const prefix = `${longKeyPath(uninstallPath).toLowerCase()}\\`
  const out: WindowsProgramRow[] = []
  for (const k of keys) {
    const lower = k.path.toLowerCase()
    if (!lower.startsWith(prefix)) continue
    const keyName = k.path.slice(prefix.length)
    if (keyName === '' || keyName.includes('\\') || k.values.size === 0) continue
    const row: WindowsProgramRow = { kind: 'windows-program', hive: scope.hive, keyName }
    if (scope.sid) row.sid = scope.sid
    if (scope.user) row.user = scope.user
    const fields = [
      ['displayName', 'displayname'],
      ['displayVersion', 'displayversion'],
      ['publisher', 'publisher'],
      ['installLocation', 'installlocation'],
      ['uninstallString', 'uninstallstring'],
      ['quietUninstallString', 'quietuninstallstring'],
    ] as const
    for (const [field, value] of fields) {
      const v = str(k, value)
      if (v) row[field] = v
    }
    out.push(row)
  }
  return out
}

/** SIDs of loaded user hives from `reg query HKU` (pure): per-user class hives and .DEFAULT are not user hives. */
export function parseHkuSids(text: string): string[] {
  const out: string[] = []
  for (const k of parseRegQuery(text)) {
    const m = /^HKEY_USERS\\([^\\]+)$/i.exec(k.path)
    if (!m) continue
    const sid = m[1]!
    if (sid.toUpperCase() === '.DEFAULT' || /_Classes$/i.test(sid) || !/^S-\d+(?:-\d+)+$/i.test(sid)) continue
    out.push(sid)
  }
  return out
}

/** SID -> user name from the ProfileList key (pure): the last folder of ProfileImagePath (`C:\Users\olena`). */
export function profileUsers(keys: RegKey[]): Map<string, string> {
  const prefix = `${longKeyPath(`HKLM\\${PROFILE_LIST}`).toLowerCase()}\\`
  const out = new Map<string, string>()
  for (const k of keys) {
    if (!k.path.toLowerCase().startsWith(prefix)) continue
    const sid = k.path.slice(prefix.length)
    const image = str(k, 'profileimagepath')
    if (!sid || sid.includes('\\') || !image) continue
    const name = win32.basename(image.replace(/[\\/]+$/, ''))
    if (name) out.set(sid.toUpperCase(), name)
  }
  return out
}

/** Runs `reg` with the given arguments and returns stdout; a missing key yields `''`. Injectable for tests. */
export type RegRunner = (args: string[]) => Promise<string>

export const runReg: RegRunner = (args) =>
  new Promise((resolve, reject) => {
    // Through cmd with code page 65001: reg.exe writes to a pipe in the OEM code page otherwise, which mangles
    // non-ASCII names (Cyrillic user folders, localised publishers).
    const quoted = args.map((a) => (/[\s"&|<>^]/.test(a) ? `"${a.replace(/"/g, '')}"` : a)).join(' ')
    execFile(
      process.env.ComSpec ?? 'cmd.exe',
      ['/d', '/s', '/c', `"chcp 65001 >nul && reg ${quoted}"`],
      { windowsVerbatimArguments: true, timeout: 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout)
        // Exit 1 with "unable to find": the key does not exist (no WOW6432Node on 32-bit Windows, no Uninstall key).
        if (/unable to find|не удается найти|cannot find/i.test(String(stderr)) || (!stderr && !stdout)) {
          return resolve('')
        }
        reject(new Error(`reg ${args.join(' ')}: ${String(stderr).trim() || err.message}`))
      },
    )
  })

export interface WindowsProgramsOptions {
  reg?: RegRunner
  warn?: (message: string) => void
}

/** Every uninstall key of the machine and of each loaded user hive. */
export async function collectWindowsPrograms(opts: WindowsProgramsOptions = {}): Promise<WindowsProgramRow[]> {
  const reg = opts.reg ?? runReg
  const query = async (key: string) => parseRegQuery(await reg(['query', key, '/s']))
  const [machine, wow, hku, profiles] = await Promise.all([
    query(`HKLM\\${UNINSTALL}`),
    query(`HKLM\\${UNINSTALL_WOW}`),
    reg(['query', 'HKU']),
    // A broken ProfileList only costs user names, not the rows.
    query(`HKLM\\${PROFILE_LIST}`).catch((err: Error) => {
      opts.warn?.(`windows-programs: ${err.message}`)
      return [] as RegKey[]
    }),
  ])
  const users = profileUsers(profiles)
  const rows = [
    ...uninstallRows(machine, `HKLM\\${UNINSTALL}`, { hive: 'HKLM' }),
    ...uninstallRows(wow, `HKLM\\${UNINSTALL_WOW}`, { hive: 'HKLM-WOW6432Node' }),
  ]
  for (const sid of parseHkuSids(hku)) {
    const path = `HKU\\${sid}\\${UNINSTALL}`
    try {
      const user = users.get(sid.toUpperCase())
      rows.push(...uninstallRows(await query(path), path, user ? { hive: 'HKU', sid, user } : { hive: 'HKU', sid }))
    } catch (err) {
      // One unreadable hive (access denied while it unloads) must not hide the others.
      opts.warn?.(`windows-programs: ${(err as Error).message}`)
    }
  }
  return rows
}

export const windowsProgramsCollector: Collector = {
  name: 'windows-programs',
  os: ['win32'],
  collect: (ctx) => collectWindowsPrograms(ctx.warn ? { warn: ctx.warn } : {}),
}
