// `interdict-agent install-service` / `uninstall-service`: run the agent as a system service (systemd, launchd, SCM).
import type { Command } from 'commander'
import { resolveStateDir } from '../sync/paths.js'
import {
  applyPlan,
  planInstall,
  planUninstall,
  type ServiceOs,
  type ServicePlan,
  selfProgram,
  systemdRunning,
} from '../service.js'

interface Opts {
  stateDir?: string
  print?: boolean
  dryRun?: boolean
}

function currentOs(): ServiceOs {
  const p = process.platform
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p
  throw new Error(`services are not supported on ${p}`)
}

function describe(plan: ServicePlan): string {
  const lines = [
    ...plan.files.map((f) => (f.copyFrom ? `copy ${f.copyFrom} -> ${f.path}` : `write ${f.path}`)),
    ...plan.remove.map((p) => `remove ${p}`),
    ...plan.commands.map((c) => `run ${c.join(' ')}`),
    ...plan.notes.map((n) => `note: ${n}`),
  ]
  return `${lines.join('\n')}\n`
}

function preflight(os: ServiceOs) {
  if (os !== 'win32' && process.getuid?.() !== 0) throw new Error('installing a system service needs root (sudo)')
  if (os === 'linux' && !systemdRunning()) {
    throw new Error(
      'systemd is not running on this host (no /run/systemd/system): nothing installed. ' +
        'Print the unit with `interdict-agent install-service --print` to install it by other means.',
    )
  }
}

export function registerService(program: Command) {
  program
    .command('install-service')
    .description('install the agent as a system service (systemd, launchd or Windows service) and start it')
    .option('--state-dir <dir>', 'state directory the service uses')
    .option('--print', 'print the service definition for this OS and exit')
    .option('--dry-run', 'show what would be written and run')
    .action(async (opts: Opts) => {
      const os = currentOs()
      const stateDir = resolveStateDir(opts.stateDir)
      const plan = planInstall({ os, stateDir, ...selfProgram() })
      if (opts.print) {
        // The service definition: the plan's rendered (not copied) files. Windows has two (script, service host).
        const rendered = plan.files.filter((f) => f.content !== undefined)
        for (const f of rendered) {
          if (rendered.length > 1) process.stdout.write(`==> ${f.path} <==\n`)
          process.stdout.write(f.content ?? '')
        }
        return
      }
      if (opts.dryRun) {
        process.stdout.write(describe(plan))
        return
      }
      preflight(os)
      await applyPlan(plan, undefined, (s) => process.stdout.write(`${s}\n`))
      for (const n of plan.notes) process.stdout.write(`note: ${n}\n`)
      process.stdout.write('interdict-agent service installed and started\n')
    })

  program
    .command('uninstall-service')
    .description('stop and remove the agent service (the state dir and the installed binary stay)')
    .option('--state-dir <dir>', 'state directory the service used')
    .option('--dry-run', 'show what would be removed and run')
    .action(async (opts: Opts) => {
      const os = currentOs()
      const plan = planUninstall({ os, stateDir: resolveStateDir(opts.stateDir) })
      if (opts.dryRun) {
        process.stdout.write(describe(plan))
        return
      }
      preflight(os)
      await applyPlan(plan, undefined, (s) => process.stdout.write(`${s}\n`))
      process.stdout.write('interdict-agent service removed\n')
    })
}
