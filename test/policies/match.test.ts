import { describe, expect, it } from 'vitest'
import type { ProcessRow, Row } from '../../agent/collectors/types.js'
import { compileBundle } from '../../policies/compile.js'
import { loadPolicies } from '../../policies/load.js'
import { compileMatcher } from '../../policies/match.js'

const CATALOG = new URL('../../policies/catalog', import.meta.url).pathname
const policies = await loadPolicies(CATALOG)
const now = new Date('2026-11-28T12:00:00Z')
const military = compileBundle(policies, 'military', { version: 1, now })
const linux = compileMatcher(military.apps, 'linux', { now })
const windows = compileMatcher(military.apps, 'win32', { now })
const mac = compileMatcher(military.apps, 'darwin', { now })

const proc = (p: Partial<ProcessRow>): ProcessRow => ({ kind: 'process', pid: 4242, ppid: 1, name: 'x', ...p })
const signals = (rows: Row[], m = linux) => m.matchAll(rows).map((f) => `${f.appId}:${f.signal}:${f.matched}`)

describe('matching processes', () => {
  it('finds Telegram by exe basename, argv[0] and a short comm', () => {
    expect(signals([proc({ name: 'telegram-deskto', exe: '/usr/bin/telegram-desktop' })])).toEqual([
      'telegram:process-name:telegram-desktop',
    ])
    expect(signals([proc({ name: 'Telegram', exe: '/home/u/Telegram/Telegram' })])).toEqual([
      'telegram:process-name:Telegram',
    ])
    expect(signals([proc({ name: 'Telegram', argv: ['/home/u/Downloads/Telegram/Telegram'] })])).toEqual([
      'telegram:process-name:Telegram',
    ])
  })

  it('never matches a truncated comm alone, or a substring of a command line', () => {
    // comm "telegram-deskto" could be any name sharing the first 15 bytes: it is not evidence by itself.
    expect(signals([proc({ name: 'telegram-deskto' })])).toEqual([])
    expect(
      signals([
        proc({ name: 'grep', exe: '/usr/bin/grep', argv: ['grep', 'telegram'] }),
        proc({ name: 'telegram-notes', exe: '/home/u/bin/telegram-notes', argv: ['telegram-notes'] }),
        proc({ name: 'python3', exe: '/usr/bin/python3.11', argv: ['python3', 'telegram_bot.py'] }),
        proc({ name: 'telegram', exe: '/home/u/telegram', argv: ['./telegram'] }), // Linux names are case-exact
        proc({ name: 'Telegram.sh', exe: '/usr/bin/bash', argv: ['/bin/bash', '/home/u/Telegram.sh'] }),
      ]),
    ).toEqual([])
  })

  it('ranks a hash above a name, and a marker finds a renamed copy', () => {
    const sha = 'a'.repeat(64)
    const m = compileMatcher(
      [
        {
          policy: 'p',
          id: 'x',
          name: 'X',
          actions: ['kill'],
          match: { processNames: ['telegram-desktop'], sha256: [sha] },
        },
      ],
      'linux',
    )
    const [f] = m.match(proc({ exe: '/usr/bin/telegram-desktop', sha256: sha }))
    expect(f).toMatchObject({ signal: 'sha256', specificity: 100, subject: 'process:4242', actions: ['kill'] })
    const marker = military.apps.find((a) => a.id === 'telegram')!.match.binaryMarkers![0]!
    expect(linux.needs.markers).toContain(marker)
    expect(signals([proc({ name: 'notes', exe: '/home/u/.cache/notes', markers: [marker] })])).toEqual([
      `telegram:binary-marker:${marker}`,
    ])
  })

  it('folds case on Windows and macOS', () => {
    expect(signals([proc({ name: 'TELEGRAM.EXE' })], windows)).toEqual(['telegram:process-name:Telegram.exe'])
    expect(signals([proc({ name: 'Telegram', teamId: '6N38VWS5BX', bundleId: 'ru.keepcoder.Telegram' })], mac)).toEqual(
      ['telegram:team-id:6N38VWS5BX'],
    )
  })
})

describe('matching installed software and traces', () => {
  it('packages, desktop entries and app data', () => {
    expect(
      signals([
        { kind: 'package', manager: 'deb', name: 'telegram-desktop', scope: 'system' },
        { kind: 'package', manager: 'deb', name: 'telegram-desktop-notes', scope: 'system' },
        { kind: 'package', manager: 'flatpak', name: 'org.telegram.desktop', scope: 'user', user: 'olena' },
        {
          kind: 'desktop-entry',
          path: '/usr/share/applications/org.telegram.desktop.desktop',
          desktopId: 'org.telegram.desktop',
        },
        {
          kind: 'desktop-entry',
          path: '/x/tg.desktop',
          desktopId: 'tg',
          exec: 'env QT_SCALE=1 /opt/telegram/Telegram -- %u',
        },
        { kind: 'artifact', path: '/home/olena/.local/share/TelegramDesktop/tdata' },
        { kind: 'artifact', path: '/home/olena/Downloads/Telegram Desktop' },
      ]),
    ).toEqual([
      'telegram:package:deb:telegram-desktop',
      'telegram:package:flatpak:org.telegram.desktop',
      'telegram:bundle-id:org.telegram.desktop',
      'telegram:process-name:Telegram',
      'telegram:artifact:~/.local/share/TelegramDesktop/tdata',
    ])
  })

  it('Windows programs and Store packages, per-user paths', () => {
    expect(
      signals(
        [
          {
            kind: 'windows-program',
            hive: 'HKU',
            sid: 'S-1-5-21-1-1001',
            keyName: '{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1',
            displayName: 'Telegram Desktop',
            publisher: 'Telegram FZ-LLC',
          },
          {
            kind: 'appx',
            name: 'UnigramPreview',
            packageFullName: '38833FF26BA1D.UnigramPreview_11.0.0.0_x64__g9c9v27vpyspw',
            packageFamilyName: '38833FF26BA1D.UnigramPreview_g9c9v27vpyspw',
          },
          {
            kind: 'executable',
            path: 'C:\\Users\\olena\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe',
            source: 'pe',
          },
          {
            kind: 'windows-program',
            hive: 'HKLM',
            keyName: '7-Zip',
            displayName: '7-Zip 23.01',
            publisher: 'Igor Pavlov',
          },
        ],
        windows,
      ),
    ).toEqual([
      'telegram:uninstall-key:{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1',
      'telegram:appx-family:38833FF26BA1D.UnigramPreview_g9c9v27vpyspw',
      'telegram:path:%APPDATA%/Telegram Desktop/Telegram.exe',
    ])
  })

  it('connections to Telegram data centres, IPv4, IPv6 and IPv4-mapped', () => {
    const conn = (remoteAddress: string) => ({
      kind: 'connection' as const,
      protocol: 'tcp' as const,
      localAddress: '10.0.0.2',
      localPort: 50000,
      remoteAddress,
      remotePort: 443,
      pid: 77,
    })
    expect(signals([conn('149.154.167.51'), conn('::ffff:91.108.56.130'), conn('2001:67c:4e8:f004::a')])).toEqual([
      'telegram:network:149.154.160.0/20',
      'telegram:network:91.108.56.0/22',
      'telegram:network:2001:67c:4e8::/48',
    ])
    expect(signals([conn('149.154.176.1'), conn('8.8.8.8'), conn('2001:67c:4e9::1')])).toEqual([])
  })
})

describe('exemptions', () => {
  it('reduce actions to report while active, for the device or class named', () => {
    const exemption = {
      device: 'dev-1',
      apps: ['telegram'],
      reason: 'counter-intelligence monitoring',
      approvedBy: 'ciso',
      expiresAt: '2026-12-01T00:00:00Z',
    }
    const row = proc({ exe: '/usr/bin/telegram-desktop' })
    const on = compileMatcher(military.apps, 'linux', { now, deviceId: 'dev-1', exemptions: [exemption] })
    expect(on.match(row)[0]).toMatchObject({ actions: ['report'], exempted: expect.stringContaining('ciso') })
    const other = compileMatcher(military.apps, 'linux', { now, deviceId: 'dev-2', exemptions: [exemption] })
    expect(other.match(row)[0]!.actions).toContain('kill')
    const later = compileMatcher(military.apps, 'linux', {
      now: new Date('2026-12-02T00:00:00Z'),
      deviceId: 'dev-1',
      exemptions: [exemption],
    })
    expect(later.match(row)[0]!.actions).toContain('kill')
  })
})
