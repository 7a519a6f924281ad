import { mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dpkgCollector, parseDpkgStatus } from '../../agent/collectors/linux/dpkg.js'
import { flatpakCollector, metainfoVersion } from '../../agent/collectors/linux/flatpak.js'
import { findRpm, parseRpmQa, RPM_QUERY_FORMAT, rpmCollector } from '../../agent/collectors/linux/rpm.js'
import { parseSnapList, snapCollector, snapNameFromFile, snapYamlVersion } from '../../agent/collectors/linux/snap.js'
import type { PackageRow } from '../../agent/collectors/types.js'
import { fixture, home, makeCtx, put, tempDir } from './linux-helpers.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

describe('dpkg', () => {
  it('parses a status fixture: installed (and held) packages only, continuation lines ignored', () => {
    const rows = parseDpkgStatus(fixture('dpkg-status'))
    const names = rows.map((r) => r.name)
    expect(names).toEqual(['adduser', 'bash', 'coreutils', 'telegram-desktop', 'held-pkg', 'libfoo1'])
    expect(rows.find((r) => r.name === 'telegram-desktop')).toEqual({
      kind: 'package',
      manager: 'deb',
      name: 'telegram-desktop',
      version: '4.6.5+ds-2',
      arch: 'amd64',
      scope: 'system',
    })
    expect(rows.find((r) => r.name === 'libfoo1')).toMatchObject({ version: '1:2.3-4', arch: 'arm64' })
  })

  it('handles CRLF and a missing trailing newline', () => {
    const text =
      'Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\nPackage: b\nStatus: install ok installed'
    expect(parseDpkgStatus(text).map((r) => [r.name, r.version])).toEqual([
      ['a', '1'],
      ['b', undefined],
    ])
  })

  it('reads the real /var/lib/dpkg/status quickly', async () => {
    const t = performance.now()
    const rows = (await dpkgCollector.collect(makeCtx())) as PackageRow[]
    const ms = performance.now() - t
    const names = new Set(rows.map((r) => r.name))
    expect(names.has('bash') || names.has('coreutils')).toBe(true)
    expect(rows.every((r) => r.kind === 'package' && r.manager === 'deb' && r.scope === 'system')).toBe(true)
    expect(ms).toBeLessThan(200)
  })

  it('reads a fixture tree through ctx.root, and is empty (not an error) without dpkg', async () => {
    put(join(tmp.dir, 'var/lib/dpkg/status'), fixture('dpkg-status'))
    const rows = await dpkgCollector.collect(makeCtx({ root: tmp.dir }))
    expect(rows).toHaveLength(6)
    expect(await dpkgCollector.collect(makeCtx({ root: join(tmp.dir, 'empty') }))).toEqual([])
  })

  it('throws a clear error when the database is unreadable', async () => {
    mkdirSync(join(tmp.dir, 'var/lib/dpkg/status'), { recursive: true }) // EISDIR
    await expect(dpkgCollector.collect(makeCtx({ root: tmp.dir }))).rejects.toThrow(/dpkg: cannot read/)
  })
})

describe('rpm', () => {
  it('parses rpm -qa output with epochs and pseudo-packages', () => {
    const rows = parseRpmQa(fixture('rpm-qa.txt'))
    expect(rows.map((r) => r.name)).toEqual(['bash', 'telegram-desktop', 'gpg-pubkey', 'glibc-langpack-en'])
    expect(rows[1]).toEqual({
      kind: 'package',
      manager: 'rpm',
      name: 'telegram-desktop',
      version: '1:5.2.3-1.fc40',
      arch: 'x86_64',
      scope: 'system',
    })
    expect(rows[2]?.arch).toBeUndefined()
    expect(RPM_QUERY_FORMAT).toContain('%{NAME}\\t')
  })

  it('returns nothing when rpm or its database is absent', async () => {
    if (await findRpm()) {
      // rpm present: a root without an rpmdb still yields nothing.
      expect(await rpmCollector.collect(makeCtx({ root: tmp.dir }))).toEqual([])
    } else {
      expect(await rpmCollector.collect(makeCtx())).toEqual([])
    }
  })
})

describe('snap', () => {
  it('parses `snap list` output', () => {
    const rows = parseSnapList(fixture('snap-list.txt'))
    expect(rows.map((r) => [r.name, r.version])).toEqual([
      ['core22', '20240111'],
      ['snapd', '2.61.3'],
      ['telegram-desktop', '5.2.3'],
      ['firefox', '125.0.3-1'],
    ])
  })

  it('small parsers', () => {
    expect(snapYamlVersion("name: telegram-desktop\nversion: '5.2.3'\nsummary: x\n")).toBe('5.2.3')
    expect(snapNameFromFile('telegram-desktop_6067.snap')).toBe('telegram-desktop')
    expect(snapNameFromFile('firefox_work_4209.snap')).toBe('firefox')
    expect(snapNameFromFile('README')).toBeUndefined()
  })

  it('lists /snap/* and /var/lib/snapd/snaps/*.snap in a fixture tree', async () => {
    const r = tmp.dir
    put(join(r, 'snap/telegram-desktop/6067/meta/snap.yaml'), 'name: telegram-desktop\nversion: 5.2.3\n')
    symlinkSync('6067', join(r, 'snap/telegram-desktop/current'))
    put(join(r, 'snap/bin/telegram-desktop'), '')
    put(join(r, 'snap/README'), '')
    mkdirSync(join(r, 'snap/leftover'))
    put(join(r, 'var/lib/snapd/snaps/telegram-desktop_6067.snap'), '')
    put(join(r, 'var/lib/snapd/snaps/firefox_4209.snap'), '')
    put(join(r, 'var/lib/snapd/snaps/partial'), '')
    const rows = await snapCollector.collect(makeCtx({ root: r }))
    expect(rows).toEqual([
      { kind: 'package', manager: 'snap', name: 'firefox', scope: 'system' },
      { kind: 'package', manager: 'snap', name: 'telegram-desktop', version: '5.2.3', scope: 'system' },
    ])
  })
})

describe('flatpak', () => {
  it('lists system and per-user apps from a fixture tree', async () => {
    const r = tmp.dir
    const sys = join(r, 'var/lib/flatpak/app/org.telegram.desktop')
    put(
      join(sys, 'x86_64/stable/abc123/files/share/metainfo/org.telegram.desktop.metainfo.xml'),
      '<component><releases><release version="5.2.3" date="2024-06-01"/><release version="5.2.2"/></releases></component>',
    )
    symlinkSync('abc123', join(sys, 'x86_64/stable/active'))
    symlinkSync('x86_64/stable', join(sys, 'current'))
    const alice = join(r, 'home/alice')
    // A per-user install without a `current` link (older layout): arch from the directory.
    mkdirSync(join(alice, '.local/share/flatpak/app/io.github.kotatogram/aarch64/stable'), { recursive: true })
    mkdirSync(join(alice, '.local/share/flatpak/app/empty.Leftover'), { recursive: true })
    const ctx = makeCtx({ root: r, homes: [home('alice', alice, 1000), home('bob', join(r, 'home/bob'))] })
    const rows = (await flatpakCollector.collect(ctx)) as PackageRow[]
    expect(rows).toEqual([
      {
        kind: 'package',
        manager: 'flatpak',
        name: 'org.telegram.desktop',
        version: '5.2.3',
        arch: 'x86_64',
        scope: 'system',
      },
      {
        kind: 'package',
        manager: 'flatpak',
        name: 'io.github.kotatogram',
        arch: 'aarch64',
        scope: 'user',
        user: 'alice',
      },
    ])
  })

  it('reads the newest release from AppStream metainfo', () => {
    expect(metainfoVersion('<releases>\n  <release date="2024" version="1.2"/>\n</releases>')).toBe('1.2')
    expect(metainfoVersion('<component/>')).toBeUndefined()
  })
})
