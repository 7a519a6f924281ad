import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  collectWindowsPrograms,
  decodeRegFile,
  parseHkuSids,
  parseRegFile,
  parseRegQuery,
  profileUsers,
  type RegRunner,
  UNINSTALL,
  uninstallRows,
  windowsProgramsCollector,
} from '../../agent/collectors/windows/registry.js'
import { REPO } from '../helpers.js'

const FIX = join(REPO, 'test/fixtures/windows/reg')
const text = (f: string) => readFileSync(join(FIX, f), 'utf8')
const SID1 = 'S-1-5-21-3623811015-3361044348-30300820-1001'
const SID2 = 'S-1-5-21-3623811015-3361044348-30300820-1002'
const TG_KEY = '{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1'
const TG_DIR = 'C:\\Users\\olena\\AppData\\Roaming\\Telegram Desktop'

/** Plays back recorded `reg` output by key, like the machine the fixtures came from. */
function recordedReg(calls: string[][] = []): RegRunner {
  const byKey: Record<string, string> = {
    [`HKLM\\${UNINSTALL}`]: 'hklm-uninstall.txt',
    'HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall': 'wow6432-uninstall.txt',
    HKU: 'hku.txt',
    'HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList': 'profilelist.txt',
    [`HKU\\${SID1}\\${UNINSTALL}`]: 'hku-1001-uninstall.txt',
    [`HKU\\${SID2}\\${UNINSTALL}`]: 'hku-1002-uninstall.txt',
  }
  return async (args) => {
    calls.push(args)
    const f = byKey[args[1]!]
    return f ? text(f) : '' // S-1-5-18/19/20 have no Uninstall key: reg reports "unable to find", runner gives ''
  }
}

describe('reg query output', () => {
  it('parses keys and typed values, names with spaces, empty values and CRLF', () => {
    const keys = parseRegQuery(text('hku-1001-uninstall.txt'))
    expect(keys.map((k) => k.path.split('\\').at(-1))).toEqual(['Uninstall', 'OneDriveSetup.exe', TG_KEY])
    const tg = keys[2]!
    expect(tg.values.get('displayname')).toEqual({ name: 'DisplayName', type: 'REG_SZ', value: 'Telegram Desktop' })
    expect(tg.values.get('inno setup: app path')?.value).toBe(TG_DIR)
    expect(tg.values.get('estimatedsize')).toEqual({ name: 'EstimatedSize', type: 'REG_DWORD', value: 0x2b4c6 })
    expect(tg.values.get('quietuninstallstring')?.value).toBe(`"${TG_DIR}\\unins000.exe" /SILENT`)
    const office = parseRegQuery(text('hklm-uninstall.txt')).find((k) => k.path.endsWith('0FF1CE}'))!
    expect(office.values.get('comments')).toEqual({ name: 'Comments', type: 'REG_SZ', value: '' })
    expect(office.values.get('uninstallstring')?.type).toBe('REG_EXPAND_SZ')
  })

  it('reads REG_MULTI_SZ, REG_QWORD, the (Default) value and its unset placeholder', () => {
    const out = [
      '',
      'HKEY_LOCAL_MACHINE\\SOFTWARE\\Test',
      '    (Default)    REG_SZ    (value not set)',
      '    Multi    REG_MULTI_SZ    one\\0two words\\0three',
      '    Q    REG_QWORD    0x1d9a3c5e7f0',
      '    Big    REG_QWORD    0x1d9a3c5e7f00000',
      '    Path    REG_EXPAND_SZ    %ProgramFiles%\\App',
      '    Bin    REG_BINARY    0A0B',
      '',
      'HKEY_LOCAL_MACHINE\\SOFTWARE\\Test\\Sub',
      '    (Default)    REG_SZ    set',
      '',
    ].join('\r\n')
    const [k, sub] = parseRegQuery(out)
    expect(k!.values.has('')).toBe(false)
    expect(k!.values.get('multi')?.value).toEqual(['one', 'two words', 'three'])
    expect(k!.values.get('q')?.value).toBe(0x1d9a3c5e7f0)
    expect(k!.values.get('big')?.value).toBe(0x1d9a3c5e7f00000n)
    expect(k!.values.get('path')?.value).toBe('%ProgramFiles%\\App')
    expect(k!.values.get('bin')?.value).toBe('0A0B')
    expect(sub!.values.get('')?.value).toBe('set')
    const wow = parseRegQuery(text('wow6432-uninstall.txt'))
    const redist = wow.find((x) => x.path.endsWith('5A77}'))!
    expect(redist.values.get('bundleupgradecode')?.value).toEqual([
      '{65E5BD06-6392-3027-8C26-853107D3CF1A}',
      '{C146EF48-4D31-3C3D-A2C5-1E91AF8A0A9B}',
    ])
  })

  it('lists user hive SIDs without _Classes and .DEFAULT, and maps SIDs to users via ProfileList', () => {
    expect(parseHkuSids(text('hku.txt'))).toEqual(['S-1-5-19', 'S-1-5-20', SID1, SID2, 'S-1-5-18'])
    const users = profileUsers(parseRegQuery(text('profilelist.txt')))
    expect(users.get(SID1)).toBe('olena')
    expect(users.get(SID2)).toBe('taras')
    expect(users.get('S-1-5-18')).toBe('systemprofile')
  })

  it('turns only direct, non-empty subkeys of Uninstall into rows', () => {
    const rows = uninstallRows(parseRegQuery(text('hklm-uninstall.txt')), `HKLM\\${UNINSTALL}`, { hive: 'HKLM' })
    // Patches (a grandchild) and the value-less AddressBook/DirectDrawEx keys are not programs.
    expect(rows.map((r) => r.keyName)).toEqual([
      '7-Zip',
      'Connection Manager',
      'Google Chrome',
      '{90160000-008C-0000-1000-0000000FF1CE}',
    ])
    expect(rows[2]).toEqual({
      kind: 'windows-program',
      hive: 'HKLM',
      keyName: 'Google Chrome',
      displayName: 'Google Chrome',
      displayVersion: '131.0.6778.86',
      publisher: 'Google LLC',
      installLocation: 'C:\\Program Files\\Google\\Chrome\\Application',
      uninstallString:
        '"C:\\Program Files\\Google\\Chrome\\Application\\131.0.6778.86\\Installer\\setup.exe" --uninstall' +
        ' --channel=stable --system-level --verbose-logging',
    })
  })
})

describe('.reg export', () => {
  it('decodes UTF-16LE with BOM, escapes, dword, hex(2)/hex(7)/hex(b) with continuation lines', () => {
    const bytes = readFileSync(join(FIX, 'olena-telegram.reg'))
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xfe])
    const keys = parseRegFile(decodeRegFile(bytes))
    expect(keys).toHaveLength(1) // the [-KEY] deletion is not a key
    const k = keys[0]!
    expect(k.path.toLowerCase()).toBe(`HKEY_CURRENT_USER\\${UNINSTALL}\\${TG_KEY}`.toLowerCase())
    expect(k.values.get('installlocation')?.value).toBe(`${TG_DIR}\\`)
    expect(k.values.get('uninstallstring')?.value).toBe(`"${TG_DIR}\\unins000.exe"`)
    expect(k.values.get('displayicon')).toEqual({
      name: 'DisplayIcon',
      type: 'REG_EXPAND_SZ',
      value: '%APPDATA%\\Telegram Desktop\\Telegram.exe',
    })
    expect(k.values.get('inno setup: tasks')?.value).toEqual(['desktopicon', 'startup'])
    expect(k.values.get('lastcheck')).toEqual({ name: 'LastCheck', type: 'REG_QWORD', value: 133944912000000000n })
    expect(k.values.get('estimatedsize')?.value).toBe(0x2b4c6)
    expect(k.values.get('comment')?.value).toBe('say "hi" to C:\\temp')
    expect(k.values.get('')?.value).toBe('default value')
  })

  it('gives the same row as reg query for the same key', () => {
    const fromFile = uninstallRows(
      parseRegFile(decodeRegFile(readFileSync(join(FIX, 'olena-telegram.reg')))),
      `HKCU\\${UNINSTALL}`,
      { hive: 'HKU', sid: SID1, user: 'olena' },
    )
    const path = `HKU\\${SID1}\\${UNINSTALL}`
    const fromQuery = uninstallRows(parseRegQuery(text('hku-1001-uninstall.txt')), path, {
      hive: 'HKU',
      sid: SID1,
      user: 'olena',
    }).filter((r) => r.keyName === TG_KEY)
    expect(fromFile).toEqual(fromQuery)
  })

  it('rejects text without the regedit header', () => {
    expect(() => parseRegFile('[HKEY_LOCAL_MACHINE\\X]\r\n')).toThrow(/not a \.reg file/)
  })
})

describe('windows-programs collector', () => {
  it('collects HKLM, WOW6432Node and every loaded user hive with sid and user', async () => {
    const calls: string[][] = []
    const rows = await collectWindowsPrograms({ reg: recordedReg(calls) })
    expect(rows.filter((r) => r.hive === 'HKLM')).toHaveLength(4)
    expect(rows.filter((r) => r.hive === 'HKLM-WOW6432Node').map((r) => r.displayName)).toEqual([
      'Microsoft Edge',
      'Microsoft Edge WebView2 Runtime',
      'Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.40.33816',
    ])
    const tg = rows.find((r) => r.keyName === TG_KEY)
    expect(tg).toEqual({
      kind: 'windows-program',
      hive: 'HKU',
      keyName: TG_KEY,
      sid: SID1,
      user: 'olena',
      displayName: 'Telegram Desktop',
      displayVersion: '5.15.4',
      publisher: 'Telegram FZ-LLC',
      installLocation: `${TG_DIR}\\`,
      uninstallString: `"${TG_DIR}\\unins000.exe"`,
      quietUninstallString: `"${TG_DIR}\\unins000.exe" /SILENT`,
    })
    const ayu = rows.find((r) => r.keyName === '{53F49750-6209-4FBF-9CA8-7A333C87D666}_is1')
    expect(ayu).toMatchObject({ hive: 'HKU', sid: SID2, user: 'taras', displayName: 'AyuGram Desktop' })
    expect(ayu?.publisher).toBe('Radolyn Labs')
    // Per-user hives of service accounts were queried too; _Classes and .DEFAULT never.
    const queried = calls.map((c) => c[1])
    expect(queried).toContain(`HKU\\S-1-5-18\\${UNINSTALL}`)
    expect(queried.some((k) => k?.includes('_Classes') || k?.includes('.DEFAULT'))).toBe(false)
  })

  it('warns about one unreadable hive and still returns the others', async () => {
    const warnings: string[] = []
    const base = recordedReg()
    const reg: RegRunner = async (args) => {
      if (args[1]?.startsWith(`HKU\\${SID2}`)) throw new Error(`reg query ${args[1]}: ERROR: Access is denied.`)
      return base(args)
    }
    const rows = await collectWindowsPrograms({ reg, warn: (m) => warnings.push(m) })
    expect(rows.some((r) => r.keyName === TG_KEY)).toBe(true)
    expect(rows.some((r) => r.sid === SID2)).toBe(false)
    expect(warnings).toEqual([expect.stringMatching(/Access is denied/)])
    expect(windowsProgramsCollector.os).toEqual(['win32'])
  })
})
