// interdict-server: parse flags, build the app, listen. Prints what first start created (signing key, admin token)
// once, to stdout, outside the JSON log.
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import { buildApp } from './app.js'

const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`)
  return n
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1'
}

const program = new Command('interdict-server')
  .description('Interdict policy server: enrollment, signed per-class policy bundles, reports, compliance')
  .option('--port <n>', 'TCP port', int('port', 0, 65535), Number(process.env.INTERDICT_PORT ?? 8443))
  .option('--host <addr>', 'address to listen on', process.env.INTERDICT_HOST ?? '127.0.0.1')
  .option('--data-dir <dir>', 'SQLite database and signing key', process.env.INTERDICT_DATA_DIR ?? '.interdict')
  .option(
    '--database-url <url>',
    'use PostgreSQL instead of SQLite (postgres://...)',
    process.env.INTERDICT_DATABASE_URL,
  )
  .option('--signing-key <file>', 'policy signing key (default <data-dir>/signing-key.pem)')
  .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
  .option('--tls-key <file>', 'private key for --tls-cert (PEM)')
  .option('--allow-insecure-http', 'allow plain HTTP on a non-loopback address (behind a TLS proxy only)', false)
  .option(
    '--heartbeat-interval <sec>',
    'expected agent heartbeat interval; silent for 3 = unknown',
    int('heartbeat-interval', 5, 86400),
    60,
  )
  .option('--log-level <level>', 'fatal|error|warn|info|debug', process.env.LOG_LEVEL ?? 'info')
  .option(
    '--events-file <path>',
    'append a JSON-lines event stream (findings, actions, enrollments, pushes, exemptions) for a SIEM; - = stdout',
    process.env.INTERDICT_EVENTS_FILE,
  )
  .option('--metrics-public', 'serve /metrics without a token to loopback clients (a local Prometheus)', false)
  .addHelpText(
    'after',
    '\nEnvironment: INTERDICT_ADMIN_TOKEN registers an admin token for automation (instead of printing a generated one).',
  )
  .showHelpAfterError()

program.parse()
const o = program.opts<{
  port: number
  host: string
  dataDir: string
  databaseUrl?: string
  signingKey?: string
  tlsCert?: string
  tlsKey?: string
  allowInsecureHttp: boolean
  heartbeatInterval: number
  logLevel: string
  eventsFile?: string
  metricsPublic: boolean
}>()

// With the event stream on stdout, logs and the first-start notice move to stderr so stdout stays pure JSON lines.
const eventsOnStdout = o.eventsFile === '-'

if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) {
  console.error('error: --tls-cert and --tls-key go together')
  process.exit(2)
}
if (!o.tlsCert && !isLoopback(o.host) && !o.allowInsecureHttp) {
  console.error(
    `error: refusing plain HTTP on ${o.host}: device tokens would travel in clear text. ` +
      'Use --tls-cert/--tls-key, or --allow-insecure-http behind a TLS-terminating proxy.',
  )
  process.exit(2)
}

try {
  const { app, created } = await buildApp({
    dataDir: resolve(o.dataDir),
    databaseUrl: o.databaseUrl,
    signingKeyFile: o.signingKey ? resolve(o.signingKey) : undefined,
    logger: eventsOnStdout ? { level: o.logLevel, stream: process.stderr } : { level: o.logLevel },
    adminToken: process.env.INTERDICT_ADMIN_TOKEN || undefined,
    heartbeatIntervalSec: o.heartbeatInterval,
    https: o.tlsCert && o.tlsKey ? { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) } : undefined,
    integrations: {
      eventsFile: o.eventsFile && o.eventsFile !== '-' ? resolve(o.eventsFile) : o.eventsFile,
      metricsPublic: o.metricsPublic,
    },
  })
  for (const w of created.warnings) app.log.warn(w)
  const address = await app.listen({ port: o.port, host: o.host })
  if (created.signingKey || created.adminToken) {
    const lines = ['', 'interdict-server: first start created:']
    if (created.signingKey)
      lines.push(`  policy signing key  ${created.signingKey}  (mode 0600; back it up: agents pin it)`)
    if (created.adminToken) {
      lines.push(`  admin token         ${created.adminToken}`)
      lines.push('  (shown once, stored only as a hash: keep it in your password manager)')
    }
    lines.push('')
    const out = eventsOnStdout ? process.stderr : process.stdout
    out.write(`${lines.join('\n')}\n`)
  }
  app.log.info({ address }, 'listening')
  let closing = false
  const stop = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    // Queued reports are written before exit; a second signal (or 10 s) ends it regardless.
    setTimeout(() => process.exit(1), 10_000).unref()
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
} catch (err) {
  console.error(`interdict-server: ${(err as Error).message}`)
  process.exit(1)
}
