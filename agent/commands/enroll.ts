// `interdict-agent enroll`: register this device with the server using an enroll secret (which decides its class),
// store the identity in the state dir and fetch the first policy. Exit 0 ok, 2 usage, 3 secret rejected, 4 server
// unreachable or TLS failure.
import type { Command } from 'commander'

export function registerEnroll(program: Command) {
  program
    .command('enroll')
    .description('enroll this device with an Interdict server (the enroll secret decides its device class)')
    .requiredOption('--server <url>', 'server URL, e.g. https://interdict.example.org')
    .requiredOption(
      '--secret <secret>',
      'enroll secret from `interdictctl enroll-secret create` (or env INTERDICT_ENROLL_SECRET)',
    )
    .option('--ca <file>', 'PEM CA certificate the server certificate must chain to (all other CAs are refused)')
    .option('--state-dir <dir>', 'state directory (default: per-OS system location, or INTERDICT_STATE_DIR)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { server: string; secret: string; ca?: string; stateDir?: string; json?: boolean }) => {
      const [{ EnrollError, enroll }, { errorMessage }, { resolveStateDir }] = await Promise.all([
        import('../sync/enroll.js'),
        import('../sync/fsutil.js'),
        import('../sync/paths.js'),
      ])
      const stateDir = resolveStateDir(opts.stateDir)
      try {
        const r = await enroll({
          server: opts.server,
          secret: opts.secret,
          stateDir,
          ...(opts.ca ? { caFile: opts.ca } : {}),
        })
        const policy =
          r.firstPolicy.status === 'accepted' || r.firstPolicy.status === 'unchanged'
            ? { status: 'accepted', version: r.firstPolicy.bundle.payload.version }
            : r.firstPolicy.status === 'rejected'
              ? { status: 'rejected', reason: r.firstPolicy.rejection.reason, message: r.firstPolicy.rejection.message }
              : { status: 'none', message: r.firstPolicy.message }
        if (opts.json) {
          const out = { deviceId: r.config.deviceId, class: r.config.class, server: r.config.server, stateDir, policy }
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
        } else {
          process.stdout.write(
            `Enrolled as device ${r.config.deviceId} (class ${r.config.class}) with ${r.config.server}\n` +
              `State: ${stateDir}\n` +
              (policy.status === 'accepted'
                ? `Policy: bundle version ${policy.version} accepted\n`
                : `Policy: ${policy.status}${policy.message ? ` (${policy.message})` : ''}; \`run\` keeps trying\n`),
          )
          if (new URL(r.config.server).protocol === 'http:') {
            process.stderr.write('warning: the server URL is plain http; use https with --ca outside a lab\n')
          }
        }
        process.exitCode = 0
      } catch (err) {
        const code = err instanceof EnrollError ? err.exitCode : 4
        if (opts.json) process.stdout.write(`${JSON.stringify({ error: errorMessage(err), exitCode: code })}\n`)
        process.stderr.write(`enroll failed: ${errorMessage(err)}\n`)
        process.exitCode = code
      }
    })
}
