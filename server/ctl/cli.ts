// interdictctl: the security team's command line for the admin API. Human tables by default, --json for scripts.
// Exit codes: 0 ok, 1 not found / rejected input, 2 usage, 3 authentication or permission, 4 server unreachable.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Command, CommanderError, Option } from 'commander'

const EXIT = { ok: 0, failed: 1, usage: 2, auth: 3, unreachable: 4 } as const

class CtlError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message)
  }
}

interface Globals {
  server?: string
  token?: string
  json?: boolean
}

function globals(cmd: Command): Required<Pick<Globals, 'server' | 'token'>> & { json: boolean } {
  const g = cmd.optsWithGlobals<Globals>()
  const server = g.server ?? process.env.INTERDICT_SERVER
  const token = g.token ?? process.env.INTERDICT_TOKEN
  if (!server) throw new CtlError('no server: pass --server URL or set INTERDICT_SERVER', EXIT.usage)
  if (!token) throw new CtlError('no token: pass --token T or set INTERDICT_TOKEN', EXIT.usage)
  return { server: server.replace(/\/+$/, ''), token, json: Boolean(g.json) }
}

// biome-ignore lint/suspicious/noExplicitAny: admin API replies are printed, not type-checked, here
async function api<T = any>(
  cmd: Command,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ data: T; text: string; g: ReturnType<typeof globals> }> {
  const g = globals(cmd)
  let res: Response
  try {
    res = await fetch(`${g.server}/api/v1/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${g.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(60_000),
    })
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    throw new CtlError(
      `cannot reach ${g.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      EXIT.unreachable,
    )
  }
  const text = await res.text()
  // biome-ignore lint/suspicious/noExplicitAny: JSON or CSV text
  let data: any = text
  if ((res.headers.get('content-type') ?? '').includes('json') && text) data = JSON.parse(text)
  if (res.status >= 400) {
    const msg = typeof data === 'object' && data?.message ? data.message : `HTTP ${res.status}`
    const code =
      res.status === 401 || res.status === 403 ? EXIT.auth : res.status >= 500 ? EXIT.unreachable : EXIT.failed
    throw new CtlError(msg, code)
  }
  return { data, text, g }
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)'
  const cell = (v: unknown) =>
    v == null ? '-' : Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v)
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)))
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join(
    '\n',
  )
}

const print = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`)
}
const printJson = (v: unknown) => print(JSON.stringify(v, null, 2))

function readPolicyFiles(path: string): { file: string; text: string }[] {
  let st: ReturnType<typeof statSync>
  try {
    st = statSync(path)
  } catch {
    throw new CtlError(`no such file or directory: ${path}`, EXIT.failed)
  }
  const files = st.isDirectory()
    ? readdirSync(path)
        .filter((f) => /\.(ya?ml|json)$/i.test(f))
        .sort()
        .map((f) => join(path, f))
    : [path]
  if (files.length === 0) throw new CtlError(`no policy files (.yaml, .yml, .json) in ${path}`, EXIT.failed)
  return files.map((file) => ({ file, text: readFileSync(file, 'utf8') }))
}

interface ClassPlan {
  class: string
  created: boolean
  currentVersion: number | null
  newVersion: number | null
  added: string[]
  removed: string[]
  changed: { app: string; actions?: { from: string[]; to: string[] }; match?: boolean; message?: boolean }[]
  exemptionsChanged: boolean
}

function describePush(r: {
  dryRun: boolean
  policySetVersion: number
  policies: { id: string; status: string; apps: number }[]
  createdClasses: string[]
  classes: ClassPlan[]
}): string {
  const out = [
    r.dryRun
      ? `dry run: policy set would become v${r.policySetVersion} (nothing changed)`
      : `pushed policy set v${r.policySetVersion}`,
  ]
  for (const p of r.policies) if (p.status !== 'unchanged') out.push(`  policy ${p.id}: ${p.status} (${p.apps} apps)`)
  for (const c of r.createdClasses) out.push(`  class ${c}: ${r.dryRun ? 'would be created' : 'created'}`)
  for (const c of r.classes) {
    if (c.newVersion === null) {
      out.push(`class ${c.class}: unchanged (v${c.currentVersion})`)
      continue
    }
    out.push(`class ${c.class}: v${c.currentVersion ?? 0} -> v${c.newVersion}`)
    for (const a of c.added) out.push(`  + ${a}`)
    for (const a of c.removed) out.push(`  - ${a}`)
    for (const ch of c.changed) {
      const what: string[] = []
      if (ch.actions) what.push(`actions ${ch.actions.from.join(',')} -> ${ch.actions.to.join(',')}`)
      if (ch.match) what.push('match rules changed')
      if (ch.message) what.push('message changed')
      out.push(`  ~ ${ch.app}: ${what.join('; ')}`)
    }
    if (c.exemptionsChanged) out.push('  ~ exemptions changed')
  }
  return out.join('\n')
}

function query(params: Record<string, unknown>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

const program = new Command('interdictctl')
  .description('Interdict admin CLI: policy, classes, enrollment, devices, compliance, findings, tokens')
  .option('--server <url>', 'server URL (env INTERDICT_SERVER)')
  .option('--token <token>', 'admin or auditor token (env INTERDICT_TOKEN)')
  .option('--json', 'machine-readable JSON output')
  .showHelpAfterError()
  .exitOverride()

const policy = program.command('policy').description('push and inspect policy')
policy
  .command('push')
  .description('validate and push a policy file or every .yaml/.yml/.json file in a directory')
  .argument('<path>', 'policy file or directory')
  .option('--dry-run', 'validate and show what would change per class, change nothing')
  .option('--replace', 'make these files the whole policy set (policies not pushed are removed)')
  .action(async (path: string, o: { dryRun?: boolean; replace?: boolean }, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', '/policies', {
      policies: readPolicyFiles(path),
      dryRun: Boolean(o.dryRun),
      replace: Boolean(o.replace),
    })
    g.json ? printJson(data) : print(describePush(data))
  })
policy
  .command('list')
  .description('policies in force and the current bundle version per class')
  .action(async (_o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', '/policies')
    if (g.json) return printJson(data)
    print(`policy set v${data.policySetVersion}, signing key ${data.keyId}`)
    print(table(data.policies, ['id', 'title', 'apps', 'classes']))
    print('')
    print(table(data.classes, ['class', 'version', 'apps', 'issuedAt', 'expiresAt']))
  })
policy
  .command('history')
  .description('bundles issued, newest first')
  .option('--class <c>', 'only this class')
  .option('--limit <n>', 'how many', '50')
  .action(async (o: { class?: string; limit: string }, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', `/policies/history${query({ class: o.class, limit: o.limit })}`)
    g.json
      ? printJson(data)
      : print(table(data.bundles, ['class', 'version', 'reason', 'policySet', 'issuedAt', 'expiresAt']))
  })

const cls = program.command('class').description('device classes')
cls
  .command('create')
  .description('create a device class')
  .argument('<name>', 'class name, e.g. military')
  .option('--description <text>', 'what the class is for')
  .action(async (name: string, o: { description?: string }, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', '/classes', {
      name,
      ...(o.description ? { description: o.description } : {}),
    })
    g.json ? printJson(data) : print(`created class ${data.name} (bundle v${data.bundleVersion})`)
  })
cls
  .command('list')
  .description('list classes with device counts')
  .action(async (_o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', '/classes')
    g.json ? printJson(data) : print(table(data.classes, ['name', 'devices', 'bundleVersion', 'description']))
  })

const secret = program.command('enroll-secret').description('enrollment secrets (one class each)')
secret
  .command('create')
  .description('create an enrollment secret for a class (shown once)')
  .requiredOption('--class <c>', 'device class the secret enrolls into')
  .option('--label <text>', 'note for the audit log')
  .option('--max-uses <n>', 'how many devices may use it')
  .option('--expires-in-hours <n>', 'lifetime in hours')
  .action(async (o: { class: string; label?: string; maxUses?: string; expiresInHours?: string }, cmd: Command) => {
    const body: Record<string, unknown> = { class: o.class }
    if (o.label) body.label = o.label
    if (o.maxUses) body.maxUses = Number(o.maxUses)
    if (o.expiresInHours) body.expiresInHours = Number(o.expiresInHours)
    const { data, g } = await api(cmd, 'POST', '/enroll-secrets', body)
    if (g.json) return printJson(data)
    print(`enrollment secret for class ${data.class} (id ${data.id}); shown once:\n${data.secret}`)
  })
secret
  .command('list')
  .description('list enrollment secrets (never the secrets themselves)')
  .action(async (_o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', '/enroll-secrets')
    g.json
      ? printJson(data)
      : print(table(data.secrets, ['id', 'class', 'uses', 'maxUses', 'expiresAt', 'revokedAt', 'label']))
  })
secret
  .command('revoke')
  .description('revoke an enrollment secret')
  .argument('<id>')
  .action(async (id: string, _o, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', `/enroll-secrets/${encodeURIComponent(id)}/revoke`)
    g.json ? printJson(data) : print(`revoked enrollment secret ${id}`)
  })

const STATUS = ['compliant', 'noncompliant', 'remediated', 'unknown', 'pending', 'revoked']
program
  .command('devices')
  .description('list devices')
  .option('--class <c>', 'only this class')
  .addOption(new Option('--status <s>', 'only this status').choices(STATUS))
  .option('--seen-since <t>', 'seen since (24h, 7d or ISO time)')
  .option('--seen-before <t>', 'not seen since (24h, 7d or ISO time)')
  .option('--limit <n>', 'how many', '1000')
  .addOption(new Option('--format <f>', 'output format').choices(['table', 'json', 'csv']).default('table'))
  .action(
    async (
      o: { class?: string; status?: string; seenSince?: string; seenBefore?: string; limit: string; format: string },
      cmd: Command,
    ) => {
      const q = { class: o.class, status: o.status, seenSince: o.seenSince, seenBefore: o.seenBefore, limit: o.limit }
      if (o.format === 'csv') return print((await api(cmd, 'GET', `/devices${query({ ...q, format: 'csv' })}`)).text)
      const { data, g } = await api(cmd, 'GET', `/devices${query(q)}`)
      g.json || o.format === 'json'
        ? printJson(data)
        : print(table(data.devices, ['id', 'hostname', 'class', 'status', 'openFindings', 'bundleVersion', 'lastSeen']))
    },
  )

const device = program.command('device').description('one device')
device
  .command('show')
  .description('details and recent reports of a device')
  .argument('<id>')
  .action(async (id: string, _o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', `/devices/${encodeURIComponent(id)}`)
    if (g.json) return printJson(data)
    const { recentReports, ...rest } = data
    print(table([rest], ['id', 'hostname', 'class', 'status', 'openFindings', 'bundleVersion', 'lastSeen']))
    print('')
    print(table(recentReports, ['reportId', 'scannedAt', 'bundleVersion', 'findings', 'openFindings', 'status']))
  })
device
  .command('revoke')
  .description('revoke a device: its token stops working at once')
  .argument('<id>')
  .action(async (id: string, _o, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', `/devices/${encodeURIComponent(id)}/revoke`)
    g.json ? printJson(data) : print(`revoked device ${id}`)
  })

program
  .command('compliance')
  .description('compliance summary per class')
  .addOption(new Option('--format <f>', 'output format').choices(['table', 'json', 'csv']).default('table'))
  .action(async (o: { format: string }, cmd: Command) => {
    if (o.format === 'csv') return print((await api(cmd, 'GET', '/compliance?format=csv')).text)
    const { data, g } = await api(cmd, 'GET', '/compliance')
    if (g.json || o.format === 'json') return printJson(data)
    const cols = ['class', 'total', 'compliant', 'noncompliant', 'remediated', 'unknown', 'pending']
    print(table([...data.classes, { class: 'TOTAL', ...data.totals }], cols))
  })

program
  .command('findings')
  .description('findings by app, class, device and time window')
  .option('--app <id>', 'app id, e.g. telegram')
  .option('--class <c>', 'device class')
  .option('--device <id>', 'device id')
  .addOption(new Option('--status <s>', 'finding status').choices(['open', 'remediated', 'exempted']))
  .option('--since <t>', 'from (24h, 7d or ISO time)')
  .option('--until <t>', 'until (24h, 7d or ISO time)')
  .option('--limit <n>', 'how many', '1000')
  .addOption(new Option('--format <f>', 'output format').choices(['table', 'json', 'csv']).default('table'))
  .action(async (o: Record<string, string | undefined>, cmd: Command) => {
    const q = {
      app: o.app,
      class: o.class,
      device: o.device,
      status: o.status,
      since: o.since,
      until: o.until,
      limit: o.limit,
    }
    if (o.format === 'csv') return print((await api(cmd, 'GET', `/findings${query({ ...q, format: 'csv' })}`)).text)
    const { data, g } = await api(cmd, 'GET', `/findings${query(q)}`)
    if (g.json || o.format === 'json') return printJson(data)
    const rows = data.findings.map((f: { actions: { action: string; result: string }[] }) => ({
      ...f,
      actions: f.actions.map((a) => `${a.action}:${a.result}`).join(' '),
    }))
    print(table(rows, ['scannedAt', 'hostname', 'class', 'appId', 'signal', 'matched', 'status', 'actions']))
  })

program
  .command('rollout')
  .description('which bundle version the devices of each class run')
  .action(async (_o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', '/rollout')
    if (g.json) return printJson(data)
    const rows = data.classes.map((c: { versions: { version: number | null; devices: number }[] }) => ({
      ...c,
      versions: c.versions.map((v) => `v${v.version ?? '?'}:${v.devices}`).join(' '),
    }))
    print(table(rows, ['class', 'currentVersion', 'devices', 'onCurrent', 'versions']))
  })

program
  .command('audit')
  .description('audit log of admin actions, newest first')
  .option('--since <t>', 'from (24h, 7d or ISO time)')
  .option('--action <a>', 'only this action, e.g. policy.push')
  .option('--limit <n>', 'how many', '100')
  .action(async (o: { since?: string; action?: string; limit: string }, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', `/audit${query(o)}`)
    g.json ? printJson(data) : print(table(data.entries, ['seq', 'at', 'actor', 'role', 'action', 'target']))
  })

const exemption = program.command('exemption').description('exemptions: one app allowed on a device or a class')
exemption
  .command('grant')
  .description('grant an exemption; the class bundle is re-issued so agents get it on their next poll')
  .requiredOption('--app <id>', 'app id from the policies, e.g. telegram')
  .option('--device <id>', 'the device it applies to')
  .option('--class <c>', 'the device class it applies to (instead of --device)')
  .requiredOption('--reason <text>', 'why (kept in the bundle and the audit log)')
  .requiredOption('--expires <t>', 'expiry: a duration from now (30m, 12h, 7d, 2w) or an ISO date-time')
  .option('--approver <name>', 'who approved it (default: your token label or id)')
  .action(
    async (
      o: { app: string; device?: string; class?: string; reason: string; expires: string; approver?: string },
      cmd: Command,
    ) => {
      if (Boolean(o.device) === Boolean(o.class))
        throw new CtlError('give exactly one of --device and --class', EXIT.usage)
      const expiry = /^\d+[mhdw]$/.test(o.expires) ? { expiresIn: o.expires } : { expiresAt: o.expires }
      const { data, g } = await api(cmd, 'POST', '/exemptions', {
        app: o.app,
        ...(o.device ? { device: o.device } : { class: o.class }),
        reason: o.reason,
        ...expiry,
        ...(o.approver ? { approver: o.approver } : {}),
      })
      if (g.json) return printJson(data)
      const bundles = data.bundles.map((b: { class: string; version: number }) => `${b.class} v${b.version}`)
      print(
        `granted exemption ${data.id}: ${data.app} on ${data.device ? `device ${data.device}` : `class ${data.class}`}` +
          ` until ${data.expiresAt}${bundles.length ? ` (bundle ${bundles.join(', ')})` : ''}`,
      )
    },
  )
exemption
  .command('list')
  .description('list exemptions, newest first')
  .addOption(new Option('--status <s>', 'only these').choices(['active', 'expired', 'revoked']))
  .option('--app <id>', 'only this app')
  .option('--device <id>', 'only this device')
  .option('--class <c>', 'only this class')
  .option('--limit <n>', 'how many', '1000')
  .action(async (o: Record<string, string | undefined>, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', `/exemptions${query(o)}`)
    g.json
      ? printJson(data)
      : print(table(data.exemptions, ['id', 'app', 'device', 'class', 'status', 'expiresAt', 'approvedBy', 'reason']))
  })
exemption
  .command('revoke')
  .description('revoke an exemption; the class bundle is re-issued without it')
  .argument('<id>')
  .action(async (id: string, _o, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', `/exemptions/${encodeURIComponent(id)}/revoke`)
    g.json ? printJson(data) : print(`revoked exemption ${id}`)
  })

const webhook = program.command('webhook').description('webhooks on new violations and silent devices')
webhook
  .command('create')
  .description('register an endpoint (the signing secret is shown once)')
  .argument('<url>')
  .addOption(
    new Option('--event <e...>', 'events to send').choices(['violation.new', 'device.silent']).makeOptionMandatory(),
  )
  .addOption(new Option('--format <f>', 'payload form').choices(['json', 'slack', 'teams']).default('json'))
  .option('--secret <s>', 'HMAC key (at least 16 characters; generated if absent)')
  .action(async (url: string, o: { event: string[]; format: string; secret?: string }, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', '/webhooks', {
      url,
      events: o.event,
      format: o.format,
      ...(o.secret ? { secret: o.secret } : {}),
    })
    g.json
      ? printJson(data)
      : print(`webhook ${data.id} -> ${data.url} (${data.events.join(', ')}); secret:\n${data.secret}`)
  })
webhook
  .command('list')
  .description('list webhook endpoints')
  .action(async (_o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', '/webhooks')
    g.json ? printJson(data) : print(table(data.webhooks, ['id', 'url', 'events', 'format', 'createdAt']))
  })
webhook
  .command('delete')
  .description('delete an endpoint (pending deliveries are cancelled)')
  .argument('<id>')
  .action(async (id: string, _o, cmd: Command) => {
    const { data, g } = await api(cmd, 'DELETE', `/webhooks/${encodeURIComponent(id)}`)
    g.json ? printJson(data) : print(`deleted webhook ${id}`)
  })
webhook
  .command('deliveries')
  .description('delivery log of an endpoint, newest first')
  .argument('<id>')
  .option('--limit <n>', 'how many', '50')
  .action(async (id: string, o: { limit: string }, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', `/webhooks/${encodeURIComponent(id)}/deliveries${query(o)}`)
    if (g.json) return printJson(data)
    const rows = data.deliveries.map((d: { log: { statusCode: number | null; error: string | null }[] }) => ({
      ...d,
      log: d.log.map((a) => a.statusCode ?? a.error).join(' '),
    }))
    print(table(rows, ['id', 'event', 'status', 'attempts', 'createdAt', 'finishedAt', 'log']))
  })

const token = program.command('token').description('admin and auditor tokens')
token
  .command('create')
  .description('create a token (shown once)')
  .addOption(
    new Option('--role <role>', 'admin (changes) or auditor (read only)')
      .choices(['admin', 'auditor'])
      .makeOptionMandatory(),
  )
  .option('--label <text>', 'who or what it is for')
  .action(async (o: { role: string; label?: string }, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', '/tokens', { role: o.role, ...(o.label ? { label: o.label } : {}) })
    g.json ? printJson(data) : print(`${data.role} token ${data.id}; shown once:\n${data.token}`)
  })
token
  .command('list')
  .description('list admin and auditor tokens (never the tokens themselves)')
  .action(async (_o, cmd: Command) => {
    const { data, g } = await api(cmd, 'GET', '/tokens')
    g.json ? printJson(data) : print(table(data.tokens, ['id', 'role', 'label', 'createdAt', 'revokedAt']))
  })
token
  .command('revoke')
  .description('revoke a token')
  .argument('<id>')
  .action(async (id: string, _o, cmd: Command) => {
    const { data, g } = await api(cmd, 'POST', `/tokens/${encodeURIComponent(id)}/revoke`)
    g.json ? printJson(data) : print(`revoked token ${id}`)
  })

try {
  await program.parseAsync()
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(
      err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : EXIT.usage,
    )
  }
  if (err instanceof CtlError) {
    process.stderr.write(`interdictctl: ${err.message}\n`)
    process.exit(err.code)
  }
  process.stderr.write(`interdictctl: ${(err as Error).message}\n`)
  process.exit(EXIT.failed)
}
