// Service definitions rendered from build/service/ templates, compared with committed fixtures
// (UPDATE_FIXTURES=1 rewrites them); the systemd unit is checked by `systemd-analyze verify` and the Windows service
// host compiled by Mono's C# compiler (`mcs`) where they exist.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  applyPlan,
  cmdPath,
  planInstall,
  planUninstall,
  renderLaunchdPlist,
  renderSystemdUnit,
  renderTemplate,
  renderWindowsInstall,
  renderWindowsServiceHost,
  renderWindowsUninstall,
  type Runner,
  systemdQuote,
  windowsCommandLine,
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
const hostExe = 'C:\\Program Files\\Interdict\\interdict-agent-service.exe'

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

  const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0
  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify (skipped without systemd-analyze)', () => {
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
    const install = renderWindowsInstall(hostExe)
    matchesFixture('install-windows-service.cmd', install)
    const uninstall = renderWindowsUninstall(hostExe)
    matchesFixture('uninstall-windows-service.cmd', uninstall)
    // The SCM runs the compiled host, never the agent itself (it cannot answer the SCM: error 1053).
    expect(install).toContain(
      'sc.exe create InterdictAgent binPath= "\\"C:\\Program Files\\Interdict\\interdict-agent-service.exe\\"" ',
    )
    expect(install).toContain('%WINDIR%\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe')
    expect(install).toContain(
      '/reference:System.ServiceProcess.dll /out:"C:\\Program Files\\Interdict\\interdict-agent-service.exe" ' +
        '"%~dp0InterdictAgentService.cs"',
    )
    expect(install).toContain(
      'sc.exe failure InterdictAgent reset= 86400 actions= restart/5000/restart/5000/restart/30000',
    )
    expect(install).toMatch(/^sc\.exe failureflag InterdictAgent 1\r$/m)
    expect(uninstall).toContain('del /f /q "C:\\Program Files\\Interdict\\interdict-agent-service.exe"')
    for (const script of [install, uninstall]) {
      expect(script.split('\n').every((l) => l === '' || l.endsWith('\r'))).toBe(true)
    }
    expect(cmdPath('C:\\100%\\x.exe')).toBe('C:\\100%%\\x.exe')
    expect(() => cmdPath('C:\\a&b\\x.exe')).toThrow(/unsupported character/)
  })

  it('renders the Windows service host: the agent with --stop-on-stdin-eof, paths as C# verbatim strings', () => {
    const host = renderWindowsServiceHost(win)
    matchesFixture('InterdictAgentService.cs', host)
    expect(host).toContain('const string AgentExe = @"C:\\Program Files\\Interdict\\interdict-agent.exe";')
    expect(host).toContain(
      'const string AgentArgs = @"run --state-dir C:\\ProgramData\\Interdict --stop-on-stdin-eof";',
    )
    expect(host).toContain('const string LogFile = @"C:\\ProgramData\\Interdict\\agent.log";')
    expect(host).toContain('ServiceName = "InterdictAgent";')
    // From a checkout: node.exe + script; a state dir with a space and a quote survives both quoting layers.
    const dev = renderWindowsServiceHost({
      ...win,
      program: ['C:\\node\\node.exe', 'C:\\src\\bin\\a.js'],
      stateDir: 'C:\\my "x"\\',
    })
    expect(dev).toContain('AgentExe = @"C:\\node\\node.exe";')
    expect(dev).toContain(
      'AgentArgs = @"C:\\src\\bin\\a.js run --state-dir ""C:\\my \\""x\\""\\\\"" --stop-on-stdin-eof";',
    )
    expect(() => renderWindowsServiceHost({ ...win, stateDir: 'C:\\a\nb' })).toThrow(/unsupported character/)
  })

  it('quotes Windows command lines the way CommandLineToArgvW splits them', () => {
    expect(windowsCommandLine(['run', '--state-dir', 'C:\\x'])).toBe('run --state-dir C:\\x')
    expect(windowsCommandLine(['C:\\a b\\', ''])).toBe('"C:\\a b\\\\" ""')
    expect(windowsCommandLine(['a"b', 'c\\"d'])).toBe('"a\\"b" "c\\\\\\"d"')
    expect(windowsCommandLine(['C:\\x\\y\\'])).toBe('C:\\x\\y\\')
  })

  // Windows compiles the host with the .NET Framework's csc.exe (C# 5); Mono's mcs with -langversion:5 checks the same
  // language level and the System.ServiceProcess API. Debian: apt-get install mono-mcs libmono-system-serviceprocess4.0-cil
  const mcs = spawnSync('mcs', ['--version']).status === 0
  it.skipIf(!mcs)(
    `the Windows service host compiles (${mcs ? 'mcs' : 'SKIPPED: mcs not installed; apt-get install mono-mcs libmono-system-serviceprocess4.0-cil'})`,
    () => {
      for (const [name, opts] of [
        ['standalone', win],
        ['checkout', { ...win, program: ['C:\\node\\node.exe', 'C:\\my src\\a.js'], stateDir: 'C:\\my "x"\\' }],
      ] as const) {
        const src = join(temp, `${name}.cs`)
        writeFileSync(src, renderWindowsServiceHost(opts))
        const out = join(temp, `${name}.exe`)
        const res = spawnSync(
          'mcs',
          ['-langversion:5', '-warnaserror+', '-target:winexe', '-r:System.ServiceProcess.dll', `-out:${out}`, src],
          { encoding: 'utf8' },
        )
        expect(res.status, res.stdout + res.stderr).toBe(0)
        expect(existsSync(out)).toBe(true)
      }
    },
    60_000,
  )

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
    expect(w.files.map((f) => [f.path, f.copyFrom ?? 'rendered'])).toEqual([
      ['C:\\Program Files\\Interdict\\interdict-agent.exe', 'C:\\x\\a.exe'],
      ['C:\\ProgramData\\Interdict\\service\\install-windows-service.cmd', 'rendered'],
      // The script compiles the host from beside itself (%~dp0).
      ['C:\\ProgramData\\Interdict\\service\\InterdictAgentService.cs', 'rendered'],
    ])
    expect(w.files[2]?.content).toBe(renderWindowsServiceHost(win))
    expect(w.commands).toEqual([
      ['cmd.exe', '/d', '/c', 'C:\\ProgramData\\Interdict\\service\\install-windows-service.cmd'],
    ])
    expect(w.notes.join('\n')).not.toMatch(/1053/)
    const wu = planUninstall({ os: 'win32', stateDir: win.stateDir, env: { ProgramFiles: 'D:\\Apps' } })
    expect(wu.files[0]?.content).toContain('del /f /q "D:\\Apps\\Interdict\\interdict-agent-service.exe"')
    expect(wu.remove).toEqual([
      'C:\\ProgramData\\Interdict\\service\\uninstall-windows-service.cmd',
      'C:\\ProgramData\\Interdict\\service\\InterdictAgentService.cs',
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
