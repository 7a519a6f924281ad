import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { appBundleOf, collectAppBundles, macosAppsCollector, readAppBundle } from '../../agent/collectors/macos/apps.js'
import { parseCodesign } from '../../agent/collectors/macos/codesign.js'
import { isDict, PlistError, parseBinaryPlist, parsePlist, parsePlistDict } from '../../agent/collectors/macos/plist.js'
import type { AppBundleRow, CollectContext, FileFacts } from '../../agent/collectors/types.js'
import { REPO } from '../helpers.js'

const FIX = join(REPO, 'test/fixtures/macos')
const ROOT = join(FIX, 'root')
const fixture = (p: string) => readFileSync(join(FIX, p))

function ctx(opts: { hashes?: boolean; warnings?: string[] } = {}): CollectContext & { inspected: string[] } {
  const inspected: string[] = []
  return {
    os: 'darwin',
    homes: [{ user: 'anna', home: join(ROOT, 'Users/anna') }],
    needs: { hashes: opts.hashes ?? false, markers: [], artifacts: [], names: [] },
    files: {
      async inspect(path: string): Promise<FileFacts> {
        inspected.push(path)
        return { sha256: `sha-of-${path.split('/').at(-1)}` }
      },
    },
    root: ROOT,
    warn: (m) => opts.warnings?.push(m),
    inspected,
  }
}

const byPath = (rows: AppBundleRow[], rel: string) => rows.find((r) => r.path === join(ROOT, rel))

describe('plist', () => {
  it('parses binary and XML encodings of the same dictionary identically', () => {
    const xml = parsePlist(fixture('plist/same.xml.plist'))
    const bin = parsePlist(fixture('plist/same.binary.plist'))
    expect(fixture('plist/same.binary.plist').subarray(0, 8).toString()).toBe('bplist00')
    expect(bin).toEqual(xml)
    expect(isDict(xml)).toBe(true)
    const d = xml as Record<string, unknown>
    expect(d.CFBundleIdentifier).toBe('ru.keepcoder.Telegram')
    expect(d.BuildNumber).toBe(271833)
    expect(d.Ratio).toBe(1.5)
    expect(d.Big).toBe(2n ** 62n) // beyond 2^53: kept exact as a bigint
    expect(d.Neg).toBe(-1)
    expect(d.BuildDate).toEqual(new Date('2025-06-12T10:30:00Z'))
    expect(Buffer.from(d.TGSignature as Uint8Array).toString('latin1')).toBe('\x00\x01telegram\xff')
    expect(d.Nested).toEqual({
      List: [1, -2, 2 ** 40, -(2 ** 40), 0.25, 'é ünïcødé ✓ 🚀', '', true, false],
      Empty: {},
      EmptyList: [],
    })
  })

  it('reads entities, CDATA, comments and empty elements in XML', () => {
    const text = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><!-- c --><dict>
  <key>A &amp; B</key><string>&lt;x&gt; &#233;&#x263A; <![CDATA[<raw>]]></string>
  <key>E</key><string/><key>T</key><true/><key>D</key><data>
  AAEC
  </data><key>L</key><array/></dict></plist>`
    expect(parsePlist(Buffer.from(text))).toEqual({
      'A & B': '<x> é☺ <raw>',
      E: '',
      T: true,
      D: new Uint8Array([0, 1, 2]),
      L: [],
    })
  })

  it('throws a PlistError naming the problem for malformed input', () => {
    expect(() => parsePlist(Buffer.from('hello'))).toThrow(/not a plist/)
    expect(() => parsePlist(Buffer.from('<plist><dict><key>a</key></dict></plist>'))).toThrow(/has no value/)
    expect(() => parsePlist(Buffer.from('<plist><dict><key>a</key><string>x</dict></plist>'))).toThrow(PlistError)
    expect(() => parsePlist(Buffer.from('<plist><dict><key>a</key><integer>1x</integer></dict></plist>'))).toThrow(
      /invalid integer/,
    )
    expect(() => parsePlistDict(Buffer.from('<plist><array/></plist>'))).toThrow(/not a dictionary/)
    const bin = Buffer.from(fixture('plist/same.binary.plist'))
    expect(() => parsePlist(bin.subarray(0, 30))).toThrow(/too short/)
    const corrupt = Buffer.from(bin)
    corrupt.writeBigUInt64BE(0xffffn, corrupt.length - 8) // offset table pointer past the end
    expect(() => parsePlist(corrupt)).toThrow(/outside the file/)
    expect(() => parsePlist(Buffer.from('bplist01xxxxxxxx'))).toThrow(/unsupported/)
  })

  it('rejects a binary plist whose array contains itself instead of recursing forever', () => {
    // One array object (0xA1) whose single reference points back to object 0.
    const objects = Buffer.from([0xa1, 0x00])
    const table = Buffer.from([8])
    const trailer = Buffer.alloc(32)
    trailer[6] = 1
    trailer[7] = 1
    trailer.writeBigUInt64BE(1n, 8)
    trailer.writeBigUInt64BE(0n, 16)
    trailer.writeBigUInt64BE(10n, 24)
    const buf = Buffer.concat([Buffer.from('bplist00'), objects, table, trailer])
    expect(() => parseBinaryPlist(buf)).toThrow(/cycle/)
  })
})

describe('codesign output', () => {
  it('reads Telegram Desktop: Developer ID, team C67CF9S4VU', () => {
    const s = parseCodesign(fixture('codesign/telegram-desktop.txt').toString())
    expect(s).toMatchObject({
      identifier: 'com.tdesktop.Telegram',
      teamId: 'C67CF9S4VU',
      signer: 'Telegram FZ-LLC',
      adhoc: false,
      unsigned: false,
    })
    expect(s.authorities).toEqual([
      'Developer ID Application: Telegram FZ-LLC (C67CF9S4VU)',
      'Developer ID Certification Authority',
      'Apple Root CA',
    ])
  })

  it('reads Telegram for macOS: team 6N38VWS5BX, App Store (Apple-signed) and direct builds', () => {
    const store = parseCodesign(fixture('codesign/telegram-macos-appstore.txt').toString())
    expect(store.teamId).toBe('6N38VWS5BX')
    expect(store.identifier).toBe('ru.keepcoder.Telegram')
    // Apple re-signs App Store builds: the leaf names Apple, not the developer.
    expect(store.signer).toBeUndefined()
    const direct = parseCodesign(fixture('codesign/telegram-macos-direct.txt').toString())
    expect(direct).toMatchObject({ teamId: '6N38VWS5BX', signer: 'Telegram FZ-LLC' })
  })

  it('reads ad-hoc and unsigned code as having no team', () => {
    const adhoc = parseCodesign(fixture('codesign/adhoc.txt').toString())
    expect(adhoc).toMatchObject({ adhoc: true, identifier: 'com.example.telegramnotes', authorities: [] })
    expect(adhoc.teamId).toBeUndefined()
    expect(adhoc.signer).toBeUndefined()
    const unsigned = parseCodesign(fixture('codesign/unsigned.txt').toString())
    expect(unsigned.unsigned).toBe(true)
    expect(unsigned.teamId).toBeUndefined()
  })

  it('handles CRLF and takes the team from the certificate when TeamIdentifier is missing', () => {
    const text = 'Identifier=x\r\nAuthority=Developer ID Application: Telegram FZ-LLC (C67CF9S4VU)\r\n'
    expect(parseCodesign(text)).toMatchObject({ identifier: 'x', teamId: 'C67CF9S4VU', signer: 'Telegram FZ-LLC' })
  })
})

describe('macos-apps collector', () => {
  it('lists bundles in /Applications, its subfolders and ~/Applications from XML and binary Info.plist', async () => {
    const warnings: string[] = []
    const c = ctx({ warnings })
    const { rows, problems } = await collectAppBundles(c, { codesign: false })
    const paths = rows.map((r) => r.path.slice(ROOT.length)).sort()
    expect(paths).toEqual([
      '/Applications/Messengers/Telegram.app',
      '/Applications/Telegram Notes.app',
      '/Applications/Telegram.app',
      '/Applications/Utilities/Terminal.app',
      '/Users/anna/Applications/Telegram Lite.app',
    ])
    expect(byPath(rows, 'Applications/Telegram.app')).toEqual({
      kind: 'app-bundle',
      path: join(ROOT, 'Applications/Telegram.app'),
      bundleId: 'com.tdesktop.Telegram',
      name: 'Telegram',
      version: '5.15.4',
      executable: join(ROOT, 'Applications/Telegram.app/Contents/MacOS/Telegram'),
    })
    // The other Telegram.app (binary plist) is a different app: told apart by bundle id, not name.
    expect(byPath(rows, 'Applications/Messengers/Telegram.app')).toMatchObject({
      bundleId: 'ru.keepcoder.Telegram',
      name: 'Telegram',
      version: '11.12',
    })
    expect(byPath(rows, 'Users/anna/Applications/Telegram Lite.app')).toMatchObject({
      bundleId: 'org.telegram.desktop',
      name: 'Telegram Lite',
      user: 'anna',
    })
    expect(byPath(rows, 'Applications/Telegram Notes.app')?.bundleId).toBe('com.example.telegramnotes')
    expect(problems).toHaveLength(2)
    expect(problems.find((p) => p.includes('Broken.app'))).toMatch(/XML plist line \d+/)
    expect(problems.find((p) => p.includes('Corrupt.app'))).toMatch(/binary plist/)
    // Nothing to hash: the policy did not ask.
    expect(c.inspected).toEqual([])
  })

  it('skips bad bundles with a warning and never throws', async () => {
    const warnings: string[] = []
    const rows = (await macosAppsCollector.collect(ctx({ warnings }))) as AppBundleRow[]
    expect(rows).toHaveLength(5)
    expect(warnings).toHaveLength(2)
    expect(warnings.every((w) => w.startsWith('macos-apps: skipped '))).toBe(true)
    expect(macosAppsCollector.os).toEqual(['darwin'])
  })

  it('adds team id and signer from codesign for non-Apple bundles, and file facts when hashes are needed', async () => {
    const signed: string[] = []
    const c = ctx({ hashes: true })
    const { rows } = await collectAppBundles(c, {
      codesign: async (path) => {
        signed.push(path.slice(ROOT.length))
        if (path.endsWith('/Applications/Telegram.app'))
          return parseCodesign(fixture('codesign/telegram-desktop.txt').toString())
        if (path.endsWith('Messengers/Telegram.app'))
          return parseCodesign(fixture('codesign/telegram-macos-appstore.txt').toString())
        return parseCodesign(fixture('codesign/adhoc.txt').toString())
      },
    })
    expect(signed).not.toContain('/Applications/Utilities/Terminal.app')
    expect(signed).toHaveLength(4)
    const desktop = byPath(rows, 'Applications/Telegram.app')!
    expect(desktop).toMatchObject({ teamId: 'C67CF9S4VU', signer: 'Telegram FZ-LLC', sha256: 'sha-of-Telegram' })
    expect(byPath(rows, 'Applications/Messengers/Telegram.app')).toMatchObject({ teamId: '6N38VWS5BX' })
    const notes = byPath(rows, 'Applications/Telegram Notes.app')!
    expect(notes.teamId).toBeUndefined()
    expect(notes.sha256).toBe('sha-of-Telegram Notes')
    expect(c.inspected).toHaveLength(5)
  })

  it('finds the bundle a running executable belongs to', async () => {
    const exe = join(ROOT, 'Applications/Messengers/Telegram.app/Contents/MacOS/Telegram')
    expect((await appBundleOf(exe))?.bundleId).toBe('ru.keepcoder.Telegram')
    expect(await appBundleOf('/usr/bin/true')).toBeUndefined()
    await expect(readAppBundle(join(ROOT, 'Applications/Broken.app'))).rejects.toThrow(/Broken\.app: XML plist/)
  })
})
