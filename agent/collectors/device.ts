// Device facts for enrollment and reports. systeminformation spawns helpers on some OSes, so every call has a
// deadline and anything missing falls back to node:os: enrollment must never hang on a slow WMI or dmidecode.
import { readFileSync } from 'node:fs'
import os from 'node:os'
import type { Os } from './types.js'

export interface DeviceFacts {
  os: Os
  hostname: string
  /** e.g. `Debian GNU/Linux 12`, `macOS 14.5`, `Microsoft Windows 11 Pro`. */
  osName: string
  osRelease: string
  kernel: string
  arch: string
  /** Hardware UUID when readable, else the OS install id (machine-id, IOPlatformUUID, MachineGuid). */
  hardwareId?: string
  serial?: string
  macs?: string[]
  /** Users with an open session (terminal, GUI or remote). */
  loggedInUsers: string[]
  /** Where the facts came from: systeminformation, or node:os after a timeout or error. */
  source: 'systeminformation' | 'os'
}

export interface DeviceFactsOptions {
  /** Deadline for each systeminformation call. Default 3 s. */
  timeoutMs?: number
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms)
    t.unref()
    p.then(
      (v) => {
        clearTimeout(t)
        resolve(v)
      },
      () => {
        clearTimeout(t)
        resolve(undefined)
      },
    )
  })
}

function machineId(): string | undefined {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(f, 'utf8').trim()
      if (id) return id
    } catch {}
  }
  return undefined
}

/** Facts from node:os alone (always available, never blocks). */
export function fallbackDeviceFacts(): DeviceFacts {
  const platform = process.platform as Os
  const facts: DeviceFacts = {
    os: platform,
    hostname: os.hostname(),
    osName: os.type(),
    osRelease: os.release(),
    kernel: os.release(),
    arch: os.arch(),
    loggedInUsers: [], // node:os cannot tell who has a session
    source: 'os',
  }
  const id = platform === 'linux' ? machineId() : undefined
  if (id) facts.hardwareId = id
  return facts
}

export async function deviceFacts(opts: DeviceFactsOptions = {}): Promise<DeviceFacts> {
  const ms = opts.timeoutMs ?? 3000
  const base = fallbackDeviceFacts()
  let si: Pick<typeof import('systeminformation'), 'osInfo' | 'uuid' | 'users'>
  try {
    // Only the modules used (see systeminformation-parts.d.ts).
    const [osinfo, sessions] = await Promise.all([
      import('systeminformation/lib/osinfo.js'),
      import('systeminformation/lib/users.js'),
    ])
    si = { osInfo: osinfo.osInfo, uuid: osinfo.uuid, users: sessions.users }
  } catch {
    return base
  }
  const [info, ids, users] = await Promise.all([
    withTimeout(si.osInfo(), ms),
    withTimeout(si.uuid(), ms),
    withTimeout(si.users(), ms),
  ])
  if (!info && !ids && !users) return base
  const facts: DeviceFacts = { ...base, source: 'systeminformation' }
  if (info) {
    if (info.hostname) facts.hostname = info.hostname
    facts.osName = [info.distro, info.release].filter(Boolean).join(' ') || base.osName
    if (info.release) facts.osRelease = info.release
    if (info.kernel) facts.kernel = info.kernel
    if (info.arch) facts.arch = info.arch
    if (info.serial) facts.serial = info.serial
  }
  if (ids) {
    const id = ids.hardware || ids.os
    if (id) facts.hardwareId = id
    if (ids.macs.length > 0) facts.macs = ids.macs
  }
  if (!facts.hardwareId && info?.serial) facts.hardwareId = info.serial
  if (users) facts.loggedInUsers = [...new Set(users.map((u) => u.user).filter(Boolean))]
  return facts
}
