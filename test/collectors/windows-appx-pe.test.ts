import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  findVersionResource,
  inspectPe,
  parsePeLayout,
  parsePeVersionInfo,
  readPeVersionInfo,
} from '../../agent/collectors/pe.js'
import type { CollectContext, FileFacts } from '../../agent/collectors/types.js'
import { APPX_SCRIPT, collectAppx, parseAppxJson } from '../../agent/collectors/windows/appx.js'
import { windowsExecutables } from '../../agent/collectors/windows/executables.js'
import { REPO } from '../helpers.js'

const FIX = join(REPO, 'test/fixtures/windows')
const read = (p: string) => readFileSync(join(FIX, p))

describe('AppX packages', () => {
  it('parses Get-AppxPackage JSON with a BOM into one row per installed user', () => {
    const rows = parseAppxJson(read('appx/allusers.json').toString('utf8'))
    const tg = rows.filter((r) => r.packageFamilyName === 'TelegramMessengerLLP.TelegramDesktop_t4vj0pshhgkwm')
    // taras only has it staged (InstallState 1): not installed for him.
    expect(tg).toEqual([
      {
        kind: 'appx',
        name: 'TelegramMessengerLLP.TelegramDesktop',
        packageFullName: 'TelegramMessengerLLP.TelegramDesktop_5.15.4.0_x64__t4vj0pshhgkwm',
        packageFamilyName: 'TelegramMessengerLLP.TelegramDesktop_t4vj0pshhgkwm',
        publisher: 'CN=8E3E1D84-7B7F-4F0A-9B5C-6A5E3E2C4D10',
        version: '5.15.4.0',
        installLocation:
          'C:\\Program Files\\WindowsApps\\TelegramMessengerLLP.TelegramDesktop_5.15.4.0_x64__t4vj0pshhgkwm',
        user: 'olena',
      },
    ])
    expect(rows.filter((r) => r.name === 'Microsoft.WindowsCalculator').map((r) => r.user)).toEqual(['olena', 'taras'])
    // Provisioned but installed for nobody: still reported, without a user.
    const weather = rows.filter((r) => r.name === 'Microsoft.BingWeather')
    expect(weather).toHaveLength(1)
    expect(weather[0]!.user).toBeUndefined()
  })

  it('tells Unigram from Telegram Desktop although both run Telegram.exe', () => {
    const rows = parseAppxJson(read('appx/allusers.json').toString('utf8'))
    const unigram = rows.find((r) => r.name === '38833FF26BA1D.UnigramPreview')!
    const desktop = rows.find((r) => r.name === 'TelegramMessengerLLP.TelegramDesktop')!
    expect(unigram.packageFamilyName).toBe('38833FF26BA1D.UnigramPreview_g9c9v27vpyspw')
    expect(unigram.packageFamilyName).not.toBe(desktop.packageFamilyName)
    // A running Telegram.exe is attributed by which install location its path lies under.
    const exe = `${unigram.installLocation}\\Telegram.exe`
    const owner = rows.find((r) => r.installLocation && exe.startsWith(`${r.installLocation}\\`))
    expect(owner?.name).toBe('38833FF26BA1D.UnigramPreview')
    expect(unigram.user).toBe('taras')
  })

  it('accepts the single-object shape, string enum states and empty output', () => {
    const rows = parseAppxJson(read('appx/single.json').toString('utf8'))
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ packageFamilyName: '38833FF26BA1D.UnigramPreview_g9c9v27vpyspw', user: 'taras' })
    expect(parseAppxJson('')).toEqual([])
    expect(parseAppxJson('\uFEFF\r\n')).toEqual([])
    expect(() => parseAppxJson('Get-AppxPackage : Access is denied')).toThrow(/not JSON/)
  })

  it('runs the PowerShell script through the injected runner', async () => {
    let script = ''
    const rows = await collectAppx(async (s) => {
      script = s
      return read('appx/single.json').toString('utf8')
    })
    expect(script).toBe(APPX_SCRIPT)
    expect(script).toMatch(/Get-AppxPackage -AllUsers/)
    expect(script).toMatch(/ConvertTo-Json -Depth 4/)
    expect(rows).toHaveLength(1)
  })
})

describe('PE version info', () => {
  it('reads StringFileInfo from a PE32+ with a version resource', () => {
    const info = parsePeVersionInfo(read('pe/telegram-desktop.exe'))
    expect(info).toMatchObject({
      companyName: 'Telegram FZ-LLC',
      productName: 'Telegram Desktop',
      fileDescription: 'Telegram Desktop',
      originalFilename: 'Telegram.exe',
      internalName: 'Telegram',
      fileVersion: '5.15.4.0',
      productVersion: '5.15.4.0',
    })
    expect(info?.strings.LegalCopyright).toBe('Copyright (C) 2014-2025')
    expect(parsePeVersionInfo(read('pe/telegram-notes.exe'))).toMatchObject({
      productName: 'Telegram Notes',
      companyName: 'Example Notes Ltd',
    })
  })

  it('reads a real MSVC-built PE32 (distlib launcher)', () => {
    const buf = read('pe/distlib-t32.exe')
    expect(parsePeLayout(buf).is64).toBe(false)
    expect(parsePeVersionInfo(buf)).toMatchObject({
      productName: 'Simple Launcher',
      companyName: 'Simple Launcher User',
      originalFilename: 't32.exe',
      fileVersion: '1.1.0.14',
    })
  })

  it('reads from disk with small reads and agrees with the in-memory parser', async () => {
    for (const f of ['pe/telegram-desktop.exe', 'pe/distlib-t32.exe']) {
      expect(await readPeVersionInfo(join(FIX, f))).toEqual(parsePeVersionInfo(read(f)))
    }
    expect(await inspectPe(join(FIX, 'pe/no-version.exe'))).toEqual({ pe: true })
    expect(await inspectPe(join(FIX, 'appx/single.json'))).toEqual({ pe: false })
  })

  it('handles files without resources, non-PE input and truncation without crashing', () => {
    expect(parsePeVersionInfo(read('pe/no-version.exe'))).toBeUndefined()
    expect(() => parsePeVersionInfo(Buffer.from('just text, not MZ'))).toThrow(/not a PE/)
    const full = read('pe/telegram-desktop.exe')
    expect(() => parsePeVersionInfo(full.subarray(0, 100))).toThrow(/PE/)
    const { resources } = parsePeLayout(full)
    // A resource section cut short finds nothing rather than reading out of bounds.
    expect(findVersionResource(full.subarray(resources!.fileOffset, resources!.fileOffset + 20), resources!.rva)).toBe(
      undefined,
    )
    for (let n = 0; n < full.length; n += 97) {
      try {
        parsePeVersionInfo(full.subarray(0, n))
      } catch (err) {
        expect(String(err)).toMatch(/PE/)
      }
    }
  })
})

describe('windows-executables collector', () => {
  const ROOT = join(FIX, 'root')
  function ctx(hashes = false): CollectContext & { inspected: string[] } {
    const inspected: string[] = []
    return {
      os: 'win32',
      homes: [
        { user: 'olena', home: join(ROOT, 'Users/olena') },
        { user: 'taras', home: join(ROOT, 'Users/taras') },
      ],
      needs: { hashes, markers: [], artifacts: [], names: ['telegram.exe'] },
      files: {
        async inspect(path: string): Promise<FileFacts> {
          inspected.push(path)
          return { sha256: 'f'.repeat(64) }
        },
      },
      root: ROOT,
      inspected,
    }
  }
  const rel = (p: string) => p.slice(ROOT.length + 1)

  it('finds PEs by name or version info in Downloads, Desktop and AppData, renamed copies included', async () => {
    const c = ctx()
    const rows = await windowsExecutables(c)
    const byPath = Object.fromEntries(rows.map((r) => [rel(r.path), r]))
    expect(Object.keys(byPath).sort()).toEqual([
      'Users/olena/AppData/Roaming/Telegram Desktop/Telegram.exe',
      'Users/olena/Desktop/TelegramNotes.exe',
      'Users/olena/Downloads/old/setup_helper.exe',
      'Users/taras/AppData/Local/Temp/Telegram.exe',
    ])
    expect(byPath['Users/olena/Downloads/old/setup_helper.exe']).toMatchObject({
      kind: 'executable',
      source: 'pe',
      user: 'olena',
      peProductName: 'Telegram Desktop',
      peCompanyName: 'Telegram FZ-LLC',
      size: 3072,
    })
    expect(byPath['Users/olena/Desktop/TelegramNotes.exe']?.peProductName).toBe('Telegram Notes')
    expect(byPath['Users/taras/AppData/Local/Temp/Telegram.exe']?.user).toBe('taras')
    expect(c.inspected).toEqual([])
  })

  it('with hash rules also returns version-less PEs, with file facts, but never non-PE files', async () => {
    const c = ctx(true)
    const rows = await windowsExecutables(c)
    const paths = rows.map((r) => rel(r.path))
    expect(paths).toContain('Users/olena/AppData/Local/Programs/tool/tool.exe')
    expect(paths).toContain('Users/taras/Downloads/vlc-setup.exe')
    expect(paths).not.toContain('Users/olena/Downloads/fake.exe')
    expect(rows.every((r) => r.sha256 === 'f'.repeat(64))).toBe(true)
    expect(c.inspected).toHaveLength(rows.length)
  })

  it('stays within its bounds', async () => {
    expect(await windowsExecutables(ctx(), { maxRows: 2 })).toHaveLength(2)
    const shallow = await windowsExecutables(ctx(), { maxDepth: 0 })
    expect(shallow.map((r) => rel(r.path))).toEqual(['Users/olena/Desktop/TelegramNotes.exe'])
  })
})
