// Installing the agent as a system service: systemd (Linux), launchd (macOS), the Service Control Manager (Windows).
// Rendering is pure (templates in build/service/, embedded in built binaries); `planInstall`/`planUninstall` turn it
// into files to write and commands to run, and `applyPlan` does it.
import { execFile } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, posix, resolve, win32 } from 'node:path'
import { isSea } from 'node:sea'
import { promisify } from 'node:util'
import { repoText } from './embedded.js'

export type ServiceOs = 'linux' | 'darwin' | 'win32'

export const SERVICE = {
  systemdUnit: 'interdict-agent.service',
  launchdLabel: 'com.interdict.agent',
  windowsName: 'InterdictAgent',
  windowsHostSource: 'InterdictAgentService.cs',
  displayName: 'Interdict endpoint agent',
  description: 'Finds banned apps and enforces the device class policy',
} as const

/** Replace every {{NAME}}; a placeholder without a value, or a value without a placeholder, is a bug (throws). */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  const used = new Set<string>()
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
    const v = vars[name]
    if (v === undefined) throw new Error(`template placeholder {{${name}}} has no value`)
    used.add(name)
    return v
  })
  const unused = Object.keys(vars).filter((k) => !used.has(k))
  if (unused.length > 0) throw new Error(`template has no placeholder for ${unused.join(', ')}`)
  return out
}

/** One systemd ExecStart word: quoted when needed, with `%` (specifiers) and `$` (variables) escaped. */
export function systemdQuote(word: string): string {
  if (/[\n\r]/.test(word)) throw new Error('a service argument cannot contain a newline')
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

/**
 * A path for a double-quoted string in a .cmd script: `%` doubled; quotes and what cmd acts on (also in the script's
 * unquoted messages) are refused.
 */
export function cmdPath(path: string): string {
  if (/["&|<>^\r\n]/.test(path)) throw new Error(`unsupported character in a service path: ${path}`)
  return path.replace(/%/g, '%%')
}

/** argv as one Windows command line, quoted the way programs split it again (CommandLineToArgvW, MS C runtime). */
export function windowsCommandLine(argv: readonly string[]): string {
  return argv
    .map((w) => {
      if (/[\r\n\0]/.test(w)) throw new Error(`unsupported character in service argument: ${JSON.stringify(w)}`)
      if (w !== '' && !/[\s"]/.test(w)) return w
      // Backslashes are literal except before a quote: double the ones before an inner quote and the closing one.
      return `"${w.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, '$1$1')}"`
    })
    .join(' ')
}

/** The text of a C# verbatim string literal (@"..."): only `"` needs escaping, by doubling. */
function csVerbatim(s: string): string {
  if (/[\r\n]/.test(s)) throw new Error(`a service path or argument cannot contain a newline: ${JSON.stringify(s)}`)
  return s.replace(/"/g, '""')
}

export interface ServiceOptions {
  os: ServiceOs
  /** The program and its leading arguments (the binary, or node + bin/interdict-agent.js from a checkout). */
  program: readonly string[]
  stateDir: string
}

/** The command a service runs: `<program> run --state-dir DIR`. */
export function serviceArgv(opts: ServiceOptions): string[] {
  return [...opts.program, 'run', '--state-dir', opts.stateDir]
}

export function renderSystemdUnit(opts: ServiceOptions, template = repoText(`build/service/${SERVICE.systemdUnit}`)) {
  // StateDirectory= creates /var/lib/NAME (0700) before start; only usable when the state dir is under /var/lib.
  const m = /^\/var\/lib\/([A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*)$/.exec(opts.stateDir)
  const stateDirectory = m
    ? `StateDirectory=${m[1]}\nStateDirectoryMode=0700`
    : `# StateDirectory= not used: the state dir ${opts.stateDir} is outside /var/lib (the agent creates it).`
  return renderTemplate(template, {
    EXEC_START: serviceArgv(opts).map(systemdQuote).join(' '),
    STATE_DIRECTORY: stateDirectory,
  })
}

export function renderLaunchdPlist(
  opts: ServiceOptions,
  template = repoText(`build/service/${SERVICE.launchdLabel}.plist`),
) {
  return renderTemplate(template, {
    LABEL: SERVICE.launchdLabel,
    PROGRAM_ARGUMENTS: serviceArgv(opts)
      .map((a) => `    <string>${xmlEscape(a)}</string>`)
      .join('\n'),
    LOG_FILE: '/Library/Logs/Interdict/agent.log',
  })
}

/**
 * Windows: the SCM runs a small .NET Framework service host (the agent, a Node program, cannot answer the SCM; it
 * would fail with error 1053). The host runs `<agent> run ... --stop-on-stdin-eof` and stops it by closing its stdin.
 */
export function renderWindowsServiceHost(
  opts: ServiceOptions,
  template = repoText(`build/service/${SERVICE.windowsHostSource}`),
) {
  const [exe, ...args] = [...serviceArgv(opts), '--stop-on-stdin-eof']
  return renderTemplate(template, {
    SERVICE_NAME: SERVICE.windowsName,
    AGENT_EXE: csVerbatim(exe as string),
    AGENT_ARGS: csVerbatim(windowsCommandLine(args)),
    LOG_FILE: csVerbatim(win32.join(opts.stateDir, 'agent.log')),
  })
}

/** The install script: compiles the host (its source is written next to the script) to `hostExe`, then `sc.exe`. */
export function renderWindowsInstall(
  hostExe = windowsHostPath(),
  template = repoText('build/service/install-windows-service.cmd'),
) {
  return renderTemplate(template, {
    SERVICE_NAME: SERVICE.windowsName,
    INSTALL_DIR: cmdPath(win32.dirname(hostExe)),
    HOST_EXE: cmdPath(hostExe),
    DISPLAY_NAME: SERVICE.displayName,
    DESCRIPTION: SERVICE.description,
  })
}

export function renderWindowsUninstall(
  hostExe = windowsHostPath(),
  template = repoText('build/service/uninstall-windows-service.cmd'),
) {
  return renderTemplate(template, { SERVICE_NAME: SERVICE.windowsName, HOST_EXE: cmdPath(hostExe) })
}

/** Where the binary is installed so that the service runs a root/admin-owned copy, never one in a user's folder. */
export function installedBinaryPath(os: ServiceOs, env: NodeJS.ProcessEnv = process.env): string {
  if (os === 'win32') return win32.join(env.ProgramFiles ?? 'C:\\Program Files', 'Interdict', 'interdict-agent.exe')
  return '/usr/local/bin/interdict-agent'
}

/** The compiled Windows service host, beside the installed binary (admin-owned, like it). */
export function windowsHostPath(env: NodeJS.ProcessEnv = process.env): string {
  return win32.join(win32.dirname(installedBinaryPath('win32', env)), 'interdict-agent-service.exe')
}

export interface PlanFile {
  path: string
  content?: string
  /** Copy this file instead of writing content. */
  copyFrom?: string
  mode: number
}

export interface ServicePlan {
  os: ServiceOs
  files: PlanFile[]
  /** Removed (uninstall). */
  remove: string[]
  commands: string[][]
  notes: string[]
}

export interface InstallInput {
  os: ServiceOs
  stateDir: string
  /** The running program: [execPath] for a binary, [execPath, script] from a checkout. */
  self: readonly string[]
  standalone: boolean
  env?: NodeJS.ProcessEnv
}

/** Files and commands that install and start the service (pure). */
export function planInstall(input: InstallInput): ServicePlan {
  const { os } = input
  const notes: string[] = []
  const files: PlanFile[] = []
  let program: string[]
  if (input.standalone) {
    const target = installedBinaryPath(os, input.env)
    const self = input.self[0] as string
    const same = os === 'win32' ? self.toLowerCase() === target.toLowerCase() : resolve(self) === target
    if (!same) files.push({ path: target, copyFrom: self, mode: 0o755 })
    program = [target]
  } else {
    program = [...input.self]
    notes.push('installed from a checkout: the service runs Node and this checkout (development use only)')
  }
  const opts: ServiceOptions = { os, program, stateDir: input.stateDir }
  if (os === 'linux') {
    const unit = `/etc/systemd/system/${SERVICE.systemdUnit}`
    files.push({ path: unit, content: renderSystemdUnit(opts), mode: 0o644 })
    return {
      os,
      files,
      remove: [],
      commands: [
        ['systemctl', 'daemon-reload'],
        ['systemctl', 'enable', '--now', SERVICE.systemdUnit],
      ],
      notes,
    }
  }
  if (os === 'darwin') {
    const plist = `/Library/LaunchDaemons/${SERVICE.launchdLabel}.plist`
    files.push({ path: plist, content: renderLaunchdPlist(opts), mode: 0o644 })
    return {
      os,
      files,
      remove: [],
      commands: [
        ['/bin/mkdir', '-p', '/Library/Logs/Interdict'],
        ['/usr/sbin/chown', 'root:wheel', plist],
        ['/bin/launchctl', 'bootstrap', 'system', plist],
        ['/bin/launchctl', 'enable', `system/${SERVICE.launchdLabel}`],
      ],
      notes,
    }
  }
  const script = win32.join(input.stateDir, 'service', 'install-windows-service.cmd')
  const hostExe = windowsHostPath(input.env)
  // The script first (`--print` shows it), then the host's source, which the script compiles from beside itself.
  files.push(
    { path: script, content: renderWindowsInstall(hostExe), mode: 0o644 },
    {
      path: win32.join(input.stateDir, 'service', SERVICE.windowsHostSource),
      content: renderWindowsServiceHost(opts),
      mode: 0o644,
    },
  )
  notes.push(
    `Windows: the service runs ${hostExe} (compiled at install with the .NET Framework's csc.exe), which runs the ` +
      `agent and logs its output to ${win32.join(input.stateDir, 'agent.log')}`,
  )
  return { os, files, remove: [], commands: [['cmd.exe', '/d', '/c', script]], notes }
}

/**
 * Commands and files that stop and remove the service (pure). The installed binary and the state dir stay; the
 * Windows service host goes.
 */
export function planUninstall(input: Pick<InstallInput, 'os' | 'stateDir' | 'env'>): ServicePlan {
  const { os } = input
  if (os === 'linux') {
    return {
      os,
      files: [],
      remove: [`/etc/systemd/system/${SERVICE.systemdUnit}`],
      commands: [
        ['systemctl', 'disable', '--now', SERVICE.systemdUnit],
        // after the unit file is removed:
        ['systemctl', 'daemon-reload'],
      ],
      notes: [],
    }
  }
  if (os === 'darwin') {
    return {
      os,
      files: [],
      remove: [`/Library/LaunchDaemons/${SERVICE.launchdLabel}.plist`],
      commands: [['/bin/launchctl', 'bootout', `system/${SERVICE.launchdLabel}`]],
      notes: [],
    }
  }
  const script = win32.join(input.stateDir, 'service', 'uninstall-windows-service.cmd')
  return {
    os,
    files: [{ path: script, content: renderWindowsUninstall(windowsHostPath(input.env)), mode: 0o644 }],
    remove: [script, win32.join(input.stateDir, 'service', SERVICE.windowsHostSource)],
    commands: [['cmd.exe', '/d', '/c', script]],
    notes: [],
  }
}

export type Runner = (cmd: string, args: string[]) => Promise<{ stdout: string; stderr: string }>

const execFileP = promisify(execFile)
export const defaultRunner: Runner = async (cmd, args) => {
  const { stdout, stderr } = await execFileP(cmd, args, { windowsHide: true })
  return { stdout: String(stdout), stderr: String(stderr) }
}

/**
 * Carry out a plan. Install: write files, then run the commands. Uninstall (plan.remove non-empty): run the first
 * command (stop), remove the files, then the rest (Linux: daemon-reload). A failed stop of a service that is not
 * installed is not an error.
 */
export async function applyPlan(plan: ServicePlan, run: Runner = defaultRunner, log: (s: string) => void = () => {}) {
  const write = (f: PlanFile) => {
    mkdirSync(dirname(f.path), { recursive: true, mode: 0o755 })
    if (f.copyFrom) {
      // Copy beside the target, then rename over it: a running old copy keeps working until it restarts.
      const tmp = `${f.path}.new`
      copyFileSync(f.copyFrom, tmp)
      chmodSync(tmp, f.mode)
      rmSync(f.path, { force: true })
      copyFileSync(tmp, f.path)
      rmSync(tmp, { force: true })
      chmodSync(f.path, f.mode)
    } else writeFileSync(f.path, f.content ?? '', { mode: f.mode })
    log(`wrote ${f.path}`)
  }
  const exec = async (c: string[], tolerate = false) => {
    log(`run ${c.join(' ')}`)
    try {
      await run(c[0] as string, c.slice(1))
    } catch (err) {
      if (!tolerate) throw err
      log(`  (ignored: ${err instanceof Error ? err.message.split('\n')[0] : String(err)})`)
    }
  }
  if (plan.remove.length === 0) {
    for (const f of plan.files) write(f)
    for (const c of plan.commands) await exec(c)
    return
  }
  for (const f of plan.files) write(f)
  const [stop, ...rest] = plan.commands
  if (stop) await exec(stop, true)
  for (const p of plan.remove) {
    if (existsSync(p)) {
      rmSync(p, { force: true })
      log(`removed ${p}`)
    }
  }
  for (const c of rest) await exec(c, true)
}

/** Whether systemd is the running init (systemd's own test: sd_booted()). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system')
}

/** The running agent as a program to put in a service: the binary itself, or node + the checkout's bin script. */
export function selfProgram(): { self: string[]; standalone: boolean } {
  if (isSea()) return { self: [process.execPath], standalone: true }
  const script = process.argv[1] ? posix.normalize(resolve(process.argv[1])) : ''
  return { self: [process.execPath, script], standalone: false }
}
