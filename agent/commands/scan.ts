// `interdict-agent scan`: one-shot scan of this machine. Audit unless --enforce. Exit 0 clean, 1 found, 2 error.
// Heavy modules load inside the action (every command does this), so `--help` and the other commands stay small.
import type { Command } from 'commander'
import type { ActionResult } from '../actions/index.js'

interface ScanOptions {
  policy?: string
  class: string
  root?: string
  enforce?: boolean
  stateDir?: string
  json?: boolean
}

export function registerScan(program: Command) {
  program
    .command('scan')
    .description('scan this machine once for banned apps (audit only unless --enforce)')
    .option('--policy <file|dir>', 'policy file or directory (default: the shipped catalogue)')
    .option('--class <class>', 'device class whose actions apply', 'standard')
    .option('--root <dir>', 'scan a mounted image or fixture tree instead of / (files and packages only)')
    .option('--enforce', "apply the class's actions (kill, quarantine, ...); most need root")
    .option('--state-dir <dir>', 'state dir holding the quarantine vault (default: the agent state dir)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: ScanOptions) => {
      if (opts.enforce && opts.root)
        throw new Error('--enforce cannot be combined with --root (an image is not this machine)')
      const [
        { compileMatcher },
        { collectorsFor },
        { collectContext },
        { evidenceLine, table },
        { localBundle },
        scan,
      ] = await Promise.all([
        import('../../policies/match.js'),
        import('../collectors/index.js'),
        import('../collectors/context.js'),
        import('../output.js'),
        import('../policy-source.js'),
        import('../scan.js'),
      ])
      const bundle = await localBundle(opts.policy, opts.class)
      const matcher = compileMatcher(bundle.apps, process.platform as 'linux', { exemptions: bundle.exemptions })
      const ctx = await collectContext(matcher, opts.root ? { root: opts.root } : {})
      const collectors = collectorsFor(ctx.os)
      // Progress only once a scan is slow enough to wonder about (over a second), on stderr.
      const t0 = Date.now()
      const result = await scan.runScan(collectors, ctx, matcher, (p) => {
        if (Date.now() - t0 > 1000 && process.stderr.isTTY !== undefined) {
          process.stderr.write(`scan: ${p.done}/${p.total} collectors done (${p.collector})\n`)
        }
      })
      let actions: ActionResult[] | undefined
      if (opts.enforce) {
        const [{ enforce }, { resolveStateDir }] = await Promise.all([
          import('../actions/index.js'),
          import('../sync/paths.js'),
        ])
        const stateDir = resolveStateDir(opts.stateDir)
        actions = await enforce(result.findings, { stateDir, os: ctx.os, bundle })
      }
      if (opts.json) {
        const out = {
          mode: opts.enforce ? 'enforce' : 'audit',
          class: bundle.class,
          scannedAt: result.startedAt,
          ms: Math.round(result.ms),
          collectors: result.collectors.map((c) => ({ ...c, ms: Math.round(c.ms) })),
          rows: result.rows.length,
          findings: result.findings.map(({ row, ...f }) => ({ ...f, evidence: row })),
          ...(actions ? { actions } : {}),
        }
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
      } else {
        const failed = result.collectors.filter((c) => c.error)
        process.stdout.write(
          `Scanned ${result.rows.length} items from ${result.collectors.length} collectors in ${Math.round(result.ms)} ms` +
            ` (class ${bundle.class}, ${bundle.apps.length} app rules)\n`,
        )
        for (const c of failed) process.stdout.write(`  collector ${c.name} failed: ${c.error}\n`)
        for (const c of result.collectors)
          for (const w of c.warnings ?? []) process.stdout.write(`  collector ${c.name} warning: ${w}\n`)
        if (result.findings.length === 0) process.stdout.write('No banned apps found.\n')
        else {
          process.stdout.write(
            `\n${table(
              ['APP', 'SIGNAL', 'MATCHED', 'EVIDENCE', opts.enforce ? 'ACTIONS' : 'ACTIONS (audit: not applied)'],
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
        if (actions?.length) {
          process.stdout.write(
            `\n${table(
              ['ACTION', 'SUBJECT', 'STATUS', 'DETAIL'],
              actions.map((a) => [a.action, a.subject, a.status, a.detail]),
            )}\n`,
          )
        }
      }
      process.exitCode = result.findings.length > 0 ? 1 : 0
    })
}
