// Service definitions rendered from build/service/ templates, compared with committed fixtures
// (UPDATE_FIXTURES=1 rewrites them); the systemd unit is checked by `systemd-analyze verify` where it exists.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  applyPlan,
  planInstall,
  planUninstall,
  renderLaunchdPlist,
  renderSystemdUnit,
  renderTemplate,
  renderWindowsInstall,
  renderWindowsUninstall,
  type Runner,
  systemdQuote,
  windowsBinPath,
} from '../../agent/service.js'

const FIXTURES = new URL('./fixtures/', import.meta.url)

function matchesFixture(name: string, text: string) {
  const file = new URL(name, FIXTURES)
  if (process.env.UPDATE_FIXTURES) writeFileSync(file, text)
  expect(text).toBe(readFileSync(file, 'utf8'))
}

const linux = { os: 'linux' as const, program: ['/usr/local/bin/interdict-agent'], stateDir: '/var/lib/interdict' }
const mac = {
  os: 'darwin' as const,
  program: ['/usr/local/bin/interdict-agent'],
  stateDir: '/Library/Application Support/Interdict',
}
const win = {
  os: 'win32' as const,
  program: ['C:\\Program Files\\Interdict\\interdict-agent.exe'],
  stateDir: 'C:\\ProgramData\\Interdict',
}

const temp = mkdtempSync(join(tmpdir(), 'interdict-service-'))
afterAll(() => rmSync(temp, { recursive: true, force: true }))

describe('service templates', () => {
  it('renders the systemd unit', () => {
    const unit = renderSystemdUnit(linux)
    matchesFixture('interdict-agent.service', unit)
    expect(unit).toContain('ExecStart=/usr/local/bin/interdict-agent run --state-dir /var/lib/interdict\n')
    expect(unit).toMatch(/^Restart=always$/m)
    expect(unit).toMatch(/^StateDirectory=interdict$/m)
    // Hardening that would stop quarantine (home folders, /tmp) or uninstall (/usr) must never be switched on.
    for (const bad of ['ProtectHome', 'ProtectSystem', 'PrivateTmp', 'MemoryDenyWriteExecute']) {
      expect(unit).not.toMatch(new RegExp(`^${bad}=`, 'm'))
    }
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m)
  })

  it('quotes ExecStart words and escapes specifiers', () => {
    expect(systemdQuote('/opt/x')).toBe('/opt/x')
    expect(systemdQuote('/opt/my agent/x')).toBe('"/opt/my agent/x"')
    expect(systemdQuote('50%')).toBe('50%%')
    expect(systemdQuote('$HOME')).toBe('$$HOME')
    expect(systemdQuote('a"b')).toBe('"a\\"b"')
    const unit = renderSystemdUnit({ ...linux, stateDir: '/srv/inter dict' })
    expect(unit).toContain('ExecStart=/usr/local/bin/interdict-agent run --state-dir "/srv/inter dict"\n')
    expect(unit).not.toMatch(/^StateDirectory=/m)
  })

  it('passes systemd-analyze verify', () => {
    const which = spawnSync('systemd-analyze', ['--version'])
    if (which.status !== 0) return // not installed: fixture comparison above still applies
    // verify checks that ExecStart's program exists: use this Node as the program.
    const file = join(temp, 'interdict-agent.service')
    writeFileSync(file, renderSystemdUnit({ ...linux, program: [process.execPath] }))
    const res = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    expect(res.stderr.trim(), res.stderr).toBe('')
    expect(res.status).toBe(0)
  })

  it('renders the launchd plist', () => {
    const plist = renderLaunchdPlist(mac)
    matchesFixture('com.interdict.agent.plist', plist)
    expect(plist).toContain('<string>/Library/Application Support/Interdict</string>')
    expect(plist).toMatch(/<key>KeepAlive<\/key>\s*<true\/>/)
    expect(renderLaunchdPlist({ ...mac, stateDir: '/a&b<c>' })).toContain('<string>/a&amp;b&lt;c&gt;</string>')
    if (existsSync('/usr/bin/xmllint')) execFileSync('xmllint', ['--noout', '-'], { input: plist })
  })

  it('renders the Windows service scripts', () => {
    const install = renderWindowsInstall(win)
    matchesFixture('install-windows-service.cmd', install)
    matchesFixture('uninstall-windows-service.cmd', renderWindowsUninstall())
    expect(install).toContain(
      'binPath= "\\"C:\\Program Files\\Interdict\\interdict-agent.exe\\" run --state-dir C:\\ProgramData\\Interdict"',
    )
    expect(install).toContain(
      'sc.exe failure InterdictAgent reset= 86400 actions= restart/5000/restart/5000/restart/30000',
    )
    expect(install.split('\n').every((l) => l === '' || l.endsWith('\r'))).toBe(true)
    expect(windowsBinPath(['C:\\a\\b.exe', '100%'])).toBe('C:\\a\\b.exe 100%%')
    expect(() => windowsBinPath(['C:\\a&b\\x.exe'])).toThrow(/unsupported character/)
  })

  it('refuses unfilled or unknown placeholders', () => {
    expect(() => renderTemplate('{{A}} {{B}}', { A: '1' })).toThrow(/\{\{B\}\} has no value/)
    expect(() => renderTemplate('{{A}}', { A: '1', C: '2' })).toThrow(/no placeholder for C/)
  })
})

describe('install and uninstall plans', () => {
  it('installs a copy of a standalone binary in a root-owned place, then the unit, then starts it', () => {
    const plan = planInstall({
      os: 'linux',
      stateDir: '/var/lib/interdict',
      self: ['/home/u/dl/agent'],
      standalone: true,
    })
    expect(plan.files.map((f) => [f.path, f.copyFrom ?? 'rendered', f.mode.toString(8)])).toEqual([
      ['/usr/local/bin/interdict-agent', '/home/u/dl/agent', '755'],
      ['/etc/systemd/system/interdict-agent.service', 'rendered', '644'],
    ])
    expect(plan.commands).toEqual([
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'interdict-agent.service'],
    ])
    const again = planInstall({
      os: 'linux',
      stateDir: '/var/lib/interdict',
      self: ['/usr/local/bin/interdict-agent'],
      standalone: true,
    })
    expect(again.files).toHaveLength(1)
  })

  it('plans macOS and Windows', () => {
    const m = planInstall({ os: 'darwin', stateDir: mac.stateDir, self: ['/tmp/a'], standalone: true })
    expect(m.files[1]?.path).toBe('/Library/LaunchDaemons/com.interdict.agent.plist')
    expect(m.commands).toContainEqual([
      '/bin/launchctl',
      'bootstrap',
      'system',
      '/Library/LaunchDaemons/com.interdict.agent.plist',
    ])
    const w = planInstall({ os: 'win32', stateDir: win.stateDir, self: ['C:\\x\\a.exe'], standalone: true, env: {} })
    expect(w.files[0]?.path).toBe('C:\\Program Files\\Interdict\\interdict-agent.exe')
    expect(w.commands).toEqual([
      ['cmd.exe', '/d', '/c', 'C:\\ProgramData\\Interdict\\service\\install-windows-service.cmd'],
    ])
    expect(planUninstall({ os: 'darwin', stateDir: mac.stateDir }).commands).toEqual([
      ['/bin/launchctl', 'bootout', 'system/com.interdict.agent'],
    ])
  })

  it('applies a plan: files first, then commands; uninstall stops, removes, reloads', async () => {
    const calls: string[] = []
    const runner: Runner = async (cmd, args) => {
      calls.push([cmd, ...args].join(' '))
      if (args[0] === 'disable') throw new Error('not loaded') // stopping a missing service is tolerated
      return { stdout: '', stderr: '' }
    }
    const unit = join(temp, 'etc', 'interdict-agent.service')
    const bin = join(temp, 'bin', 'interdict-agent')
    writeFileSync(join(temp, 'self'), 'binary')
    await applyPlan(
      {
        os: 'linux',
        files: [
          { path: bin, copyFrom: join(temp, 'self'), mode: 0o755 },
          { path: unit, content: renderSystemdUnit({ ...linux, program: [bin] }), mode: 0o644 },
        ],
        remove: [],
        commands: [['systemctl', 'daemon-reload']],
        notes: [],
      },
      runner,
    )
    expect(readFileSync(bin, 'utf8')).toBe('binary')
    expect(readFileSync(unit, 'utf8')).toContain(`ExecStart=${bin} run`)
    const un = planUninstall({ os: 'linux', stateDir: '/var/lib/interdict' })
    await applyPlan({ ...un, remove: [unit] }, runner)
    expect(existsSync(unit)).toBe(false)
    expect(calls).toEqual([
      'systemctl daemon-reload',
      'systemctl disable --now interdict-agent.service',
      'systemctl daemon-reload',
    ])
  })
})
