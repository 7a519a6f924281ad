// interdict-agent: the endpoint agent's command line. Each command lives in commands/ and registers itself here.
import { Command, CommanderError } from 'commander'
import { registerEnroll } from './commands/enroll.js'
import { registerQuarantine } from './commands/quarantine.js'
import { registerRun } from './commands/run.js'
import { registerScan } from './commands/scan.js'
import { registerStatus } from './commands/status.js'
import { registerService } from './commands/service.js'
import { AGENT_VERSION } from './version.js'

// Diagnostics: the process's peak resident memory on stderr at exit (bench/scan.ts reads it; the binaries take no
// --require, so it cannot be hooked in from outside).
if (process.env.INTERDICT_PRINT_PEAK_RSS) {
  process.on('exit', () => process.stderr.write(`PEAK_RSS_KB=${process.resourceUsage().maxRSS}\n`))
}

const program = new Command('interdict-agent')
  .description('Interdict endpoint agent: finds banned apps and enforces the device class policy')
  .version(AGENT_VERSION)
  .showHelpAfterError()
  .exitOverride()

registerScan(program)
registerEnroll(program)
registerRun(program)
registerStatus(program)
registerQuarantine(program)
registerService(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; usage errors exit 2 (commander already printed the message).
    process.exitCode = err.exitCode === 0 ? 0 : 2
  } else if (err instanceof Error && err.name === 'PolicyError') {
    // By name: importing the policy loader here would load YAML for every command.
    process.stderr.write(`policy error:\n${err.message}\n`)
    process.exitCode = 2
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 2
  }
}
