import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { artifactsCollector, expandArtifact, findArtifacts } from '../../agent/collectors/artifacts.js'
import { deviceFacts, fallbackDeviceFacts } from '../../agent/collectors/device.js'
import { collectorsFor } from '../../agent/collectors/index.js'
import { listUserHomes, parsePasswd, userNamesByUid } from '../../agent/collectors/users.js'
import { fixture, home, makeCtx, makeNeeds, put, tempDir } from './linux-helpers.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

describe('users', () => {
  it('parses passwd, skipping comments and malformed lines', () => {
    const entries = parsePasswd(fixture('passwd'))
    expect(entries.map((e) => e.user)).toEqual(['root', 'daemon', 'nobody', 'alice', 'bob', 'ghost'])
    expect(entries[3]).toEqual({ user: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/bash' })
  })

  it('lists real, existing homes of root and regular users, plus unlisted /home folders', async () => {
    const r = tmp.dir
    put(join(r, 'etc/passwd'), fixture('passwd'))
    for (const d of ['root', 'home/alice', 'home/bob', 'home/carol', 'usr/sbin'])
      mkdirSync(join(r, d), { recursive: true })
    put(join(r, 'home/not-a-dir'), '')
    const homes = await listUserHomes({ os: 'linux', root: r })
    expect(homes).toEqual([
      { user: 'root', uid: 0, home: join(r, 'root') },
      { user: 'alice', uid: 1000, home: join(r, 'home/alice') },
      { user: 'bob', uid: 1001, home: join(r, 'home/bob') },
      { user: 'carol', uid: expect.any(Number), home: join(r, 'home/carol') }, // e.g. an LDAP user
    ])
    expect(userNamesByUid(r).get(1001)).toBe('bob')
  })

  it('lists macOS and Windows style user folders from a root', async () => {
    for (const d of ['Users/alice', 'Users/Shared', 'Users/Public', 'Users/Default', 'Users/bob']) {
      mkdirSync(join(tmp.dir, d), { recursive: true })
    }
    const mac = await listUserHomes({ os: 'darwin', root: tmp.dir })
    expect(mac.map((h) => h.user).sort()).toEqual(['Default', 'Public', 'alice', 'bob'])
    const win = await listUserHomes({ os: 'win32', root: tmp.dir })
    expect(win.map((h) => h.user).sort()).toEqual(['Shared', 'alice', 'bob'])
  })

  it('finds at least one home on this machine', async () => {
    expect((await listUserHomes()).length).toBeGreaterThan(0)
  })
})

describe('artifacts', () => {
  const homes = () => [home('alice', join(tmp.dir, 'home/alice'), 1000), home('bob', join(tmp.dir, 'home/bob'), 1001)]

  it('expands ~, %APPDATA%, %LOCALAPPDATA% per home and absolute paths under the root', () => {
    const h = [home('alice', '/home/alice'), home('win', 'C:\\Users\\win')]
    expect(expandArtifact('~/.local/share/TelegramDesktop/tdata', h)).toEqual([
      { path: '/home/alice/.local/share/TelegramDesktop/tdata', user: 'alice' },
      { path: 'C:\\Users\\win\\.local\\share\\TelegramDesktop\\tdata', user: 'win' },
    ])
    expect(expandArtifact('%APPDATA%\\Telegram Desktop\\tdata', h)[1]).toEqual({
      path: 'C:\\Users\\win\\AppData\\Roaming\\Telegram Desktop\\tdata',
      user: 'win',
    })
    expect(expandArtifact('%LOCALAPPDATA%/x', h)[0]).toEqual({ path: '/home/alice/AppData/Local/x', user: 'alice' })
    expect(expandArtifact('/tmp/a-b', h, { root: '/fx' })).toEqual([{ path: '/fx/tmp/a-b' }])
    expect(expandArtifact('%PROGRAMDATA%/T', h, { env: { ProgramData: 'C:\\ProgramData' } })).toEqual([
      { path: 'C:\\ProgramData\\T' },
    ])
    expect(expandArtifact('/', h)).toEqual([])
    expect(expandArtifact('relative/path', h)).toEqual([])
  })

  it('reports only paths that exist, with their user, including single-level wildcards', async () => {
    const [alice, bob] = homes()
    mkdirSync(join(alice!.home, '.local/share/TelegramDesktop/tdata'), { recursive: true })
    put(join(bob!.home, 'AppData/Roaming/Telegram Desktop/tdata/key_datas'), 'TDF$')
    mkdirSync(join(bob!.home, '.local/share/KotatogramDesktop/tdata'), { recursive: true })
    put(join(tmp.dir, 'tmp/tg-socket'), '')
    const patterns = [
      '~/.local/share/TelegramDesktop/tdata',
      '%APPDATA%/Telegram Desktop/tdata',
      '~/.local/share/*Desktop/tdata',
      '~/.TelegramDesktop',
      '/tmp/tg-socket',
      '/tmp/absent',
    ]
    const ctx = makeCtx({ root: tmp.dir, homes: homes(), needs: makeNeeds({ artifacts: patterns }) })
    const rows = await artifactsCollector.collect(ctx)
    expect(rows).toEqual([
      { kind: 'artifact', path: join(alice!.home, '.local/share/TelegramDesktop/tdata'), user: 'alice' },
      { kind: 'artifact', path: join(bob!.home, 'AppData/Roaming/Telegram Desktop/tdata'), user: 'bob' },
      { kind: 'artifact', path: join(bob!.home, '.local/share/KotatogramDesktop/tdata'), user: 'bob' },
      { kind: 'artifact', path: join(tmp.dir, 'tmp/tg-socket') },
    ])
  })

  it('does nothing without patterns', async () => {
    expect(await findArtifacts([], homes())).toEqual([])
  })
})

describe('device facts', () => {
  it('returns facts from systeminformation', async () => {
    const f = await deviceFacts()
    expect(f.os).toBe('linux')
    expect(f.hostname).toBe(hostname())
    expect(f.hardwareId).toBeTruthy()
    expect(Array.isArray(f.loggedInUsers)).toBe(true)
  })

  it('falls back to node:os when systeminformation misses its deadline', async () => {
    const f = await deviceFacts({ timeoutMs: 0 })
    expect(f).toEqual(fallbackDeviceFacts())
    expect(f.source).toBe('os')
  })
})

describe('collectorsFor', () => {
  it('lists each OS’s collectors', () => {
    const names = collectorsFor('linux').map((c) => c.name)
    expect(names).toEqual([
      'processes',
      'dpkg',
      'rpm',
      'snap',
      'flatpak',
      'desktop-entries',
      'portable',
      'network',
      'artifacts',
    ])
    expect(collectorsFor('win32').map((c) => c.name)).toEqual([
      'processes',
      'windows-programs',
      'windows-appx',
      'windows-executables',
      'network',
      'artifacts',
    ])
    expect(collectorsFor('darwin').map((c) => c.name)).toEqual(['processes', 'macos-apps', 'network', 'artifacts'])
    for (const os of ['linux', 'win32', 'darwin'] as const) {
      const all = collectorsFor(os).map((c) => c.name)
      expect(new Set(all).size).toBe(all.length)
    }
  })
})
