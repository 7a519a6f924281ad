// `interdict-agent run`: the daemon, in the foreground (service managers run it this way). JSON logs on stderr,
// warnings and errors only unless --verbose or INTERDICT_LOG_LEVEL. SIGTERM/SIGINT stop it gracefully, and so does
// the end of stdin with --stop-on-stdin-eof (Windows has no SIGTERM: the service host closes the agent's stdin).
import type { Command } from 'commander'

export function registerRun(program: Command) {
  program
    .command('run')
    .description('run the agent: enforce the policy, watch processes, sync with the server')
    .option('--state-dir <dir>', 'state directory (default: per-OS system location, or INTERDICT_STATE_DIR)')
    .option('-v, --verbose', 'log every scan, sync and action (info level)')
    .option(
      '--stop-on-stdin-eof',
      'stop gracefully (as on SIGTERM: queued reports are sent) when stdin ends or closes; ' +
        'the Windows service host stops the agent this way',
    )
    .action(async (opts: { stateDir?: string; verbose?: boolean; stopOnStdinEof?: boolean }) => {
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
        const onSignal = (sig: NodeJS.Signals | 'stdin-eof') => {
          if (stopping) {
            // Second signal: the operator insists. (A stdin end after a signal is not one.)
            if (sig === 'stdin-eof') return
            daemon.writeStatusSync()
            process.exit(130)
          }
          stopping = true
          logger.info({ signal: sig }, 'stopping')
          daemon.stop().finally(resolve)
        }
        process.on('SIGTERM', onSignal)
        process.on('SIGINT', onSignal)
        if (opts.stopOnStdinEof) {
          // Input is read and dropped; 'end' is a clean EOF, 'close' also covers a pipe that broke.
          process.stdin.on('data', () => {})
          process.stdin.once('end', () => onSignal('stdin-eof'))
          process.stdin.once('close', () => onSignal('stdin-eof'))
          process.stdin.on('error', () => onSignal('stdin-eof'))
          process.stdin.resume()
        }
      })
      process.exitCode = 0
      // Keep-alive sockets and cron internals must not hold the process after a clean stop.
      setTimeout(() => process.exit(0), 200).unref()
    })
}
