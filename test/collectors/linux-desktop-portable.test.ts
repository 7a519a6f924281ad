import { readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  desktopEntriesCollector,
  execCandidates,
  execProgram,
  parseDesktopEntry,
  splitExec,
} from '../../agent/collectors/linux/desktop-entries.js'
import { classifyHeader, portableCollector, portableExecutables } from '../../agent/collectors/linux/portable.js'
import type { DesktopEntryRow, ExecutableRow, Row } from '../../agent/collectors/types.js'
import { home, makeCtx, makeNeeds, put, SLEEP, sha256, sleepCopy, tempDir } from './linux-helpers.js'

const MARKER = 'TelegramDesktop-marker-42'
let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

const byKind = <K extends Row['kind']>(rows: Row[], kind: K) =>
  rows.filter((r): r is Extract<Row, { kind: K }> => r.kind === kind)

describe('desktop entry parsing', () => {
  it('reads Name, Exec, StartupWMClass from [Desktop Entry] only, ignoring localized keys', () => {
    const text = [
      '# comment',
      '[Desktop Entry]',
      'Type=Application',
      'Name=Telegram Desktop',
      'Name[de]=Telegram',
      'Exec=telegram-desktop -- %u',
      'StartupWMClass=TelegramDesktop',
      '',
      '[Desktop Action quit]',
      'Name=Quit',
      'Exec=telegram-desktop -quit',
    ].join('\n')
    expect(parseDesktopEntry(text)).toEqual({
      type: 'Application',
      name: 'Telegram Desktop',
      exec: 'telegram-desktop -- %u',
      startupWmClass: 'TelegramDesktop',
    })
    expect(parseDesktopEntry('[Other]\nName=x')).toBeUndefined()
  })

  it('splits Exec with quoting and finds the program behind env', () => {
    expect(splitExec('"/home/a/My Apps/Tele\\"gram" --flag %U')).toEqual(['/home/a/My Apps/Tele"gram', '--flag', '%U'])
    expect(execProgram('env QT_SCALE=2 BAMF_DESKTOP_FILE_HINT=/x /opt/Telegram/Telegram -- %u')).toBe(
      '/opt/Telegram/Telegram',
    )
    expect(execProgram('/usr/bin/env -u X FOO=1 tg')).toBe('tg')
  })

  it('resolves only non-system targets', () => {
    const h = home('alice', '/fx/home/alice')
    expect(execCandidates('/usr/bin/telegram-desktop', undefined)).toBeUndefined()
    expect(execCandidates('/var/lib/flatpak/exports/bin/org.telegram.desktop', undefined)).toBeUndefined()
    expect(execCandidates('/opt/Telegram/Telegram', '/fx')).toEqual(['/fx/opt/Telegram/Telegram'])
    expect(execCandidates('/fx/opt/T', '/fx')).toEqual(['/fx/opt/T'])
    expect(execCandidates('~/Apps/T', '/fx', h)).toEqual(['/fx/home/alice/Apps/T'])
    expect(execCandidates('tg', '/fx', h)).toEqual(['/fx/home/alice/.local/bin/tg', '/fx/home/alice/bin/tg'])
    expect(execCandidates('tg', '/fx')).toBeUndefined()
  })
})

/** A fixture machine: system and user launchers, a tarball install in /opt, AppImages, portable copies. */
function buildTree(r: string) {
  const apps = join(r, 'usr/share/applications')
  put(
    join(apps, 'org.telegram.desktop.desktop'),
    '[Desktop Entry]\nName=Telegram\nExec=/usr/bin/telegram-desktop -- %u\nStartupWMClass=TelegramDesktop\n',
  )
  put(join(apps, 'kde4/foo.desktop'), '[Desktop Entry]\nName=Foo\nExec=foo\n')
  put(join(apps, 'broken.desktop'), 'not a desktop file')
  put(join(apps, 'README'), 'x')
  symlinkSync(join(apps, 'missing.desktop.target'), join(apps, 'dangling.desktop'))
  put(
    join(r, 'usr/local/share/applications/telegramdesktop.desktop'),
    '[Desktop Entry]\nExec=/opt/Telegram/Telegram -- %u\n',
  )
  sleepCopy(join(r, 'opt/Telegram/Telegram'))
  put(
    join(r, 'var/lib/flatpak/exports/share/applications/org.telegram.desktop.desktop'),
    '[Desktop Entry]\nName=Telegram\nExec=/usr/bin/flatpak run org.telegram.desktop\n',
  )

  const alice = join(r, 'home/alice')
  put(
    join(alice, '.local/share/applications/appimagekit_tg.desktop'),
    `[Desktop Entry]\nName=Telegram (AppImage)\nExec=env APPIMAGE=1 "${alice}/Apps/Tele gram.AppImage" %U\n`,
  )
  put(join(alice, '.local/share/applications/tg-bin.desktop'), '[Desktop Entry]\nExec=tg-bin\n')
  sleepCopy(join(alice, '.local/bin/tg-bin'), MARKER)
  sleepCopy(join(alice, 'Apps/Tele gram.AppImage'))

  // Portable-search material.
  sleepCopy(join(alice, 'Downloads/Telegram.AppImage'))
  const magic = Buffer.from(readFileSync(SLEEP))
  magic.write('AI\u0002', 8, 'latin1')
  put(join(alice, 'Downloads/renamed-thing'), magic, 0o755) // AppImage by magic bytes only
  sleepCopy(join(alice, 'Downloads/deep/a/b/c/telegram-desktop')) // depth 4: found
  sleepCopy(join(alice, 'Downloads/deep/a/b/c/d/telegram-desktop')) // depth 5: too deep
  sleepCopy(join(alice, 'Downloads/node_modules/telegram-desktop')) // skipped directory
  sleepCopy(join(alice, 'Desktop/chat-helper'), MARKER) // renamed copy: only its bytes give it away
  put(join(alice, 'Downloads/TELEGRAM.EXE'), Buffer.concat([Buffer.from('MZ'), Buffer.alloc(100)]))
  put(join(alice, 'Downloads/notes.txt'), 'hello')
  put(join(alice, 'Downloads/libfoo.so.1'), readFileSync(SLEEP), 0o755)
  sleepCopy(join(alice, 'bin/Telegram'))
  symlinkSync(join(alice, 'bin/Telegram'), join(alice, '.local/bin/telegram')) // same file: reported once
  sleepCopy(join(alice, 'Other/telegram-desktop')) // not a searched folder
  return { alice }
}

describe('desktop entries collector', () => {
  it('lists system and user launchers and the non-system executables they start', async () => {
    const r = tmp.dir
    const { alice } = buildTree(r)
    const needs = makeNeeds({ hashes: true, markers: [MARKER] })
    const rows = await desktopEntriesCollector.collect(makeCtx({ root: r, needs, homes: [home('alice', alice, 1000)] }))
    const entries = byKind(rows, 'desktop-entry').sort((a, b) => a.path.localeCompare(b.path))
    expect(entries.map((e) => [e.desktopId, e.user ?? null])).toEqual([
      ['appimagekit_tg', 'alice'],
      ['tg-bin', 'alice'],
      ['telegramdesktop', null],
      ['kde4-foo', null],
      ['org.telegram.desktop', null],
      ['org.telegram.desktop', null],
    ])
    expect(entries.find((e) => e.path.endsWith('usr/share/applications/org.telegram.desktop.desktop'))).toEqual({
      kind: 'desktop-entry',
      path: join(r, 'usr/share/applications/org.telegram.desktop.desktop'),
      desktopId: 'org.telegram.desktop',
      name: 'Telegram',
      exec: '/usr/bin/telegram-desktop -- %u',
      startupWmClass: 'TelegramDesktop',
    } satisfies DesktopEntryRow)

    const exes = byKind(rows, 'executable').sort((a, b) => a.path.localeCompare(b.path))
    expect(exes).toEqual([
      {
        kind: 'executable',
        path: join(alice, '.local/bin/tg-bin'),
        source: 'desktop-entry',
        user: 'alice',
        size: readFileSync(join(alice, '.local/bin/tg-bin')).length,
        sha256: sha256(join(alice, '.local/bin/tg-bin')),
        markers: [MARKER],
      },
      expect.objectContaining({ path: join(alice, 'Apps/Tele gram.AppImage'), user: 'alice', sha256: sha256(SLEEP) }),
      expect.objectContaining({
        path: join(r, 'opt/Telegram/Telegram'),
        source: 'desktop-entry',
        sha256: sha256(SLEEP),
      }),
    ])
    expect(exes[2]?.user).toBeUndefined()
  })
})

describe('portable executables', () => {
  it('classifies ELF, AppImage and PE headers', () => {
    const elf = readFileSync(SLEEP).subarray(0, 16)
    expect(classifyHeader(elf)).toBe('elf')
    const ai = Buffer.from(elf)
    ai.write('AI\u0001', 8, 'latin1')
    expect(classifyHeader(ai)).toBe('appimage')
    expect(classifyHeader(Buffer.from('MZ\u0090\u0000'))).toBe('pe')
    expect(classifyHeader(Buffer.from('#!/bin/sh'))).toBe('other')
  })

  it('finds AppImages and banned names without reading contents when no hash/marker rule exists', async () => {
    const { alice } = buildTree(tmp.dir)
    const needs = makeNeeds({ names: ['telegram-desktop', 'telegram', 'telegram.exe'] })
    const rows = (await portableCollector.collect(
      makeCtx({ root: tmp.dir, needs, homes: [home('alice', alice, 1000)] }),
    )) as ExecutableRow[]
    const found = rows.map((r) => [r.path.slice(tmp.dir.length), r.source]).sort()
    expect(found).toEqual([
      ['/home/alice/Downloads/TELEGRAM.EXE', 'portable'],
      ['/home/alice/Downloads/Telegram.AppImage', 'appimage'],
      ['/home/alice/Downloads/deep/a/b/c/telegram-desktop', 'portable'],
      ['/home/alice/Downloads/renamed-thing', 'appimage'],
      ['/home/alice/bin/Telegram', 'portable'],
      ['/opt/Telegram/Telegram', 'portable'],
    ])
    expect(rows.every((r) => r.sha256 === undefined && r.markers === undefined)).toBe(true)
    expect(rows.find((r) => r.path.endsWith('bin/Telegram'))).toMatchObject({ user: 'alice', size: expect.any(Number) })
  })

  it('inspects every ELF/PE executable when hash or marker rules exist, so renamed copies are caught', async () => {
    const { alice } = buildTree(tmp.dir)
    const needs = makeNeeds({ hashes: true, markers: [MARKER] })
    const rows = (await portableExecutables(
      makeCtx({ root: tmp.dir, needs, homes: [home('alice', alice, 1000)] }),
    )) as ExecutableRow[]
    const helper = rows.find((r) => r.path === join(alice, 'Desktop/chat-helper'))
    expect(helper).toMatchObject({ source: 'portable', user: 'alice', sha256: sha256(helper!.path), markers: [MARKER] })
    const paths = rows.map((r) => r.path)
    expect(paths).toContain(join(alice, '.local/bin/tg-bin'))
    expect(paths).toContain(join(alice, 'Downloads/TELEGRAM.EXE'))
    expect(paths.filter((p) => p.endsWith('bin/Telegram'))).toEqual([join(alice, 'bin/Telegram')]) // link deduped
    expect(paths).not.toContain(join(alice, 'Downloads/notes.txt'))
    expect(paths).not.toContain(join(alice, 'Downloads/libfoo.so.1'))
    expect(paths.some((p) => p.includes('node_modules') || p.includes('/d/') || p.includes('/Other/'))).toBe(false)
    expect(rows.find((r) => r.path.endsWith('opt/Telegram/Telegram'))?.sha256).toBe(sha256(SLEEP))
  })

  it('stops at the entry budget', async () => {
    const { alice } = buildTree(tmp.dir)
    const ctx = makeCtx({ root: tmp.dir, needs: makeNeeds({ hashes: true }), homes: [home('alice', alice)] })
    const all = await portableExecutables(ctx)
    const few = await portableExecutables(ctx, { maxEntries: 1 })
    expect(few.length).toBeLessThan(all.length)
  })
})
