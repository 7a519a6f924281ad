// `interdict-agent scan`: one-shot scan of this machine. Audit unless --enforce. Exit 0 clean, 1 found, 2 error.
import type { Command } from 'commander'
import { compileMatcher } from '../../policies/match.js'
import { collectorsFor } from '../collectors/index.js'
import { collectContext } from '../collectors/context.js'
import { evidenceLine, table } from '../output.js'
import { localBundle } from '../policy-source.js'
import { runScan } from '../scan.js'

export function registerScan(program: Command) {
  program
    .command('scan')
    .description('scan this machine once for banned apps (audit only unless --enforce)')
    .option('--policy <file|dir>', 'policy file or directory (default: the shipped catalogue)')
    .option('--class <class>', 'device class whose actions apply', 'standard')
    .option('--root <dir>', 'scan a mounted image or fixture tree instead of / (files and packages only)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { policy?: string; class: string; root?: string; json?: boolean }) => {
      const bundle = await localBundle(opts.policy, opts.class)
      const matcher = compileMatcher(bundle.apps, process.platform as 'linux', { exemptions: bundle.exemptions })
      const ctx = await collectContext(matcher, opts.root ? { root: opts.root } : {})
      const collectors = collectorsFor(ctx.os)
      // Progress only once a scan is slow enough to wonder about (over a second), on stderr.
      const t0 = Date.now()
      const result = await runScan(collectors, ctx, matcher, (p) => {
        if (Date.now() - t0 > 1000 && process.stderr.isTTY !== undefined) {
          process.stderr.write(`scan: ${p.done}/${p.total} collectors done (${p.collector})\n`)
        }
      })
      if (opts.json) {
        const out = {
          class: bundle.class,
          scannedAt: result.startedAt,
          ms: Math.round(result.ms),
          collectors: result.collectors.map((c) => ({ ...c, ms: Math.round(c.ms) })),
          rows: result.rows.length,
          findings: result.findings.map(({ row, ...f }) => ({ ...f, evidence: row })),
        }
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
      } else {
        const failed = result.collectors.filter((c) => c.error)
        process.stdout.write(
          `Scanned ${result.rows.length} items from ${result.collectors.length} collectors in ${Math.round(result.ms)} ms` +
            ` (class ${bundle.class}, ${bundle.apps.length} app rules)\n`,
        )
        for (const c of failed) process.stdout.write(`  collector ${c.name} failed: ${c.error}\n`)
        if (result.findings.length === 0) process.stdout.write('No banned apps found.\n')
        else {
          process.stdout.write(
            `\n${table(
              ['APP', 'SIGNAL', 'MATCHED', 'EVIDENCE', 'ACTIONS (audit: not applied)'],
              result.findings.map((f) => [
                f.appId,
                f.signal,
                f.matched,
                evidenceLine(f.row),
                f.exempted ? `report (exempt: ${f.exempted})` : f.actions.join(', '),
              ]),
            )}\n`,
          )
        }
      }
      process.exitCode = result.findings.length > 0 ? 1 : 0
    })
}
