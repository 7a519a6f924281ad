// `interdict-agent run`: the daemon, in the foreground (service managers run it this way). JSON logs on stderr,
// warnings and errors only unless --verbose or INTERDICT_LOG_LEVEL. SIGTERM/SIGINT stop it gracefully.
import type { Command } from 'commander'

export function registerRun(program: Command) {
  program
    .command('run')
    .description('run the agent: enforce the policy, watch processes, sync with the server')
    .option('--state-dir <dir>', 'state directory (default: per-OS system location, or INTERDICT_STATE_DIR)')
    .option('-v, --verbose', 'log every scan, sync and action (info level)')
    .action(async (opts: { stateDir?: string; verbose?: boolean }) => {
      ;(await import('../memory.js')).tuneForResidentAgent()
      const [{ default: pino }, { Daemon }, { NotEnrolled }, { errorMessage }, { resolveStateDir }] = await Promise.all(
        [
          import('pino'),
          import('../daemon.js'),
          import('../sync/config.js'),
          import('../sync/fsutil.js'),
          import('../sync/paths.js'),
        ],
      )
      const level = process.env.INTERDICT_LOG_LEVEL ?? (opts.verbose ? 'info' : 'warn')
      const logger = pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }))
      const daemon = new Daemon({ stateDir: resolveStateDir(opts.stateDir), logger })
      try {
        await daemon.start()
      } catch (err) {
        process.stderr.write(`run failed: ${errorMessage(err)}\n`)
        process.exitCode = err instanceof NotEnrolled ? 3 : 2
        await daemon.stop().catch(() => {})
        return
      }
      logger.info({ stateDir: daemon.paths.dir }, 'agent running')
      await new Promise<void>((resolve) => {
        let stopping = false
        const onSignal = (sig: NodeJS.Signals) => {
          if (stopping) {
            // Second signal: the operator insists.
            daemon.writeStatusSync()
            process.exit(130)
          }
          stopping = true
          logger.info({ signal: sig }, 'stopping')
          daemon.stop().finally(resolve)
        }
        process.on('SIGTERM', onSignal)
        process.on('SIGINT', onSignal)
      })
      process.exitCode = 0
      // Keep-alive sockets and cron internals must not hold the process after a clean stop.
      setTimeout(() => process.exit(0), 200).unref()
    })
}
