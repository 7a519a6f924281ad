// `interdict-agent quarantine list|restore ID`: the vault of files moved away by the quarantine action.
import type { Command } from 'commander'
import { listQuarantine, restoreQuarantine } from '../actions/quarantine.js'
import { table } from '../output.js'
import { resolveStateDir } from '../sync/paths.js'

export function registerQuarantine(program: Command) {
  const q = program.command('quarantine').description('list or restore quarantined files')
  q.command('list')
    .description('list quarantined files')
    .option('--state-dir <dir>', 'state directory (default: per-OS system location, or INTERDICT_STATE_DIR)')
    .option('--json', 'print as JSON')
    .action(async (opts: { stateDir?: string; json?: boolean }) => {
      const entries = await listQuarantine(resolveStateDir(opts.stateDir))
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`)
        return
      }
      if (entries.length === 0) {
        process.stdout.write('The quarantine vault is empty.\n')
        return
      }
      const rows = entries.map((e) => [e.id, e.quarantinedAt, e.app?.id ?? '', e.originalPath])
      process.stdout.write(`${table(['ID', 'WHEN', 'APP', 'ORIGINAL PATH'], rows)}\n`)
    })
  q.command('restore')
    .description('put a quarantined file back exactly where and as it was')
    .argument('<id>', 'quarantine id from `quarantine list`')
    .option('--state-dir <dir>', 'state directory (default: per-OS system location, or INTERDICT_STATE_DIR)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: { stateDir?: string; json?: boolean }) => {
      const r = await restoreQuarantine(resolveStateDir(opts.stateDir), id)
      if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`)
      else process.stdout.write(`${r.ok ? 'restored' : 'not restored'}: ${r.detail}\n`)
      process.exitCode = r.ok ? 0 : 1
    })
}
