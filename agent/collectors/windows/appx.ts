// Microsoft Store (AppX/MSIX) packages for every user, from PowerShell's Get-AppxPackage as JSON. The package family
// name is the Store's stable identity: it tells Telegram Desktop's Store build from Unigram, though both run Telegram.exe.
import { execFile } from 'node:child_process'
import type { AppxRow, Collector } from '../types.js'

export const APPX_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  '[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false',
  // -AllUsers needs an elevated shell; without it list the current user's packages rather than nothing.
  'try { $p = Get-AppxPackage -AllUsers } catch { $p = Get-AppxPackage }',
  '$p | Select-Object Name,PackageFullName,PackageFamilyName,Publisher,Version,InstallLocation,PackageUserInformation' +
    ' | ConvertTo-Json -Depth 4 -Compress',
].join('; ')

type Json = Record<string, unknown>

const field = (o: Json, name: string): unknown => {
  if (name in o) return o[name]
  const lower = name.toLowerCase()
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k]
  return undefined
}
const text = (o: Json, name: string): string | undefined => {
  const v = field(o, name)
  if (typeof v === 'string') return v.trim() || undefined
  // Windows PowerShell serialises a System.Version as an object when it is not a string.
  if (v && typeof v === 'object' && 'Major' in v) {
    const x = v as { Major: number; Minor: number; Build: number; Revision: number }
    return [x.Major, x.Minor, x.Build, x.Revision].filter((n) => typeof n === 'number' && n >= 0).join('.')
  }
  return undefined
}

// Windows.Management.Deployment.PackageInstallState: 0 NotInstalled, 1 Staged, 2 Installed, 6 Paused.
function installedFor(state: unknown): boolean {
  if (typeof state === 'number') return state === 2 || state === 6
  return typeof state === 'string' && /^(installed|paused)$/i.test(state.trim())
}

interface PackageUser {
  sid?: string
  user?: string
  installed: boolean
}

function packageUsers(info: unknown): PackageUser[] {
  const list = Array.isArray(info) ? info : info && typeof info === 'object' ? [info] : []
  const out: PackageUser[] = []
  for (const item of list) {
    if (!item || typeof item !== 'object') continue
    const o = item as Json
    const id = field(o, 'UserSecurityId')
    let sid: string | undefined
    let name: string | undefined
    if (id && typeof id === 'object') {
      sid = text(id as Json, 'Sid')
      name = text(id as Json, 'Username')
    } else if (typeof id === 'string') sid = id
    name ??= text(o, 'UserName')
    const u: PackageUser = { installed: installedFor(field(o, 'InstallState')) }
    if (sid) u.sid = sid
    // `DESKTOP-7QK2M1B\olena` -> `olena`, the name other collectors use for that user.
    if (name) u.user = name.slice(name.lastIndexOf('\\') + 1)
    out.push(u)
  }
  return out
}

/**
 * Parse the script's JSON (pure). ConvertTo-Json writes one object (not an array) for a single package and nothing at
 * all for none; a UTF-8 BOM may lead. One row per user who has the package installed; one row without a user when
 * nobody does (staged or provisioned: still on disk).
 */
export function parseAppxJson(raw: string): AppxRow[] {
  const body = raw.replace(/^\uFEFF/, '').trim()
  if (body === '') return []
  let data: unknown
  try {
    data = JSON.parse(body)
  } catch (err) {
    throw new Error(`Get-AppxPackage output is not JSON: ${(err as Error).message}`)
  }
  const list = Array.isArray(data) ? data : [data]
  const out: AppxRow[] = []
  for (const item of list) {
    if (!item || typeof item !== 'object') continue
    const o = item as Json
    const name = text(o, 'Name')
    const packageFullName = text(o, 'PackageFullName')
    const packageFamilyName = text(o, 'PackageFamilyName')
    if (!name || !packageFullName || !packageFamilyName) continue
    const base: AppxRow = { kind: 'appx', name, packageFullName, packageFamilyName }
    const publisher = text(o, 'Publisher')
    const version = text(o, 'Version')
    const installLocation = text(o, 'InstallLocation')
    if (publisher) base.publisher = publisher
    if (version) base.version = version
    if (installLocation) base.installLocation = installLocation
    const users = packageUsers(field(o, 'PackageUserInformation')).filter((u) => u.installed)
    if (users.length === 0) out.push(base)
    for (const u of users) {
      const who = u.user ?? u.sid
      out.push(who ? { ...base, user: who } : { ...base })
    }
  }
  return out
}

export type PowerShellRunner = (script: string) => Promise<string>

export const runPowerShell: PowerShellRunner = (script) =>
  new Promise((resolve, reject) => {
    // Windows PowerShell 5.1, not pwsh: the Appx module only loads natively there.
    execFile(
      'powershell.exe',
      ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', script],
      { timeout: 120_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', windowsHide: true },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`powershell: ${String(stderr).trim() || err.message}`))
        else resolve(stdout)
      },
    )
  })

export async function collectAppx(run: PowerShellRunner = runPowerShell): Promise<AppxRow[]> {
  return parseAppxJson(await run(APPX_SCRIPT))
}

export const windowsAppxCollector: Collector = {
  name: 'windows-appx',
  os: ['win32'],
  collect: () => collectAppx(),
}
