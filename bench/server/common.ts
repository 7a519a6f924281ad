// Shared bench helpers: run the real server in its own process (the load generator stays in this one), enroll devices,
// make ~1 KB reports with 3 findings, take medians, and account the CPU each side used (the generator shares the two
// cores with the server, so requests per server CPU-second is the figure that does not depend on the generator).
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { timeOrderedUuid } from '../../agent/sync/outbox.js'
import { type ServerProcess, spawnServer as spawnPlain } from '../../test/server/process.js'

export const ADMIN = `idt_adm_bench_${randomBytes(12).toString('hex')}`

export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
export const flag = (name: string) => process.argv.includes(`--${name}`)
/** --quick (from `npm run bench -- --quick`): smaller counts and shorter runs, for a smoke check of the table. */
export const quick = flag('quick')
/** The default unless --quick, then the quick value (an explicit --name N always wins). */
export const sized = (name: string, full: number, small: number) => arg(name, quick ? small : full)
export const PG_BASE = process.env.INTERDICT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export async function api(url: string, method: string, path: string, body?: unknown, token = ADMIN) {
  const r = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await r.text()
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

/**
 * --profile DIR: the server runs under `node --cpu-prof` and writes its V8 profile to DIR when it stops (NODE_OPTIONS
 * may not carry --cpu-prof). --binary FILE: a standalone server binary instead of the checkout. Otherwise the same
 * spawn the tests use.
 */
function spawnServer(args: string[], env: Record<string, string>): Promise<ServerProcess> {
  const i = process.argv.indexOf('--profile')
  const b = process.argv.indexOf('--binary')
  const nodeArgs = i < 0 ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.argv[i + 1]}`]
  return spawnPlain(args, env, nodeArgs, b < 0 ? undefined : process.argv[b + 1])
}

/** Start a server over SQLite (temp dir) or PostgreSQL (fresh schema of INTERDICT_TEST_PG / --pg URL). */
export async function benchServer(opts: { postgres?: boolean; extra?: string[] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'interdict-bench-'))
  let databaseUrl: string | undefined
  let schema: string | undefined
  const base = PG_BASE
  if (opts.postgres) {
    schema = `bench_${randomBytes(4).toString('hex')}`
    const c = new pg.Client({ connectionString: base })
    await c.connect()
    await c.query(`create schema ${schema}`)
    await c.end()
    const u = new URL(base)
    u.searchParams.set('options', `-c search_path=${schema}`)
    databaseUrl = u.toString()
  }
  const args = ['--data-dir', dataDir, ...(databaseUrl ? ['--database-url', databaseUrl] : []), ...(opts.extra ?? [])]
  const env = { INTERDICT_ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'info' }
  let srv: ServerProcess | undefined = await spawnServer(args, env)
  return {
    url: srv.url,
    pid: () => srv?.child.pid ?? 0,
    dataDir,
    databaseUrl,
    /** Stop the server process but keep its data (to fill the database directly, then restart). */
    async stopProcessOnly() {
      await srv?.stop()
      srv = undefined
    },
    async restart() {
      await srv?.stop()
      srv = await spawnServer(args, env)
      return srv
    },
    async stop() {
      await srv?.stop()
      rmSync(dataDir, { recursive: true, force: true })
      if (schema) {
        const c = new pg.Client({ connectionString: base })
        await c.connect()
        await c.query(`drop schema ${schema} cascade`)
        await c.end()
      }
    },
  }
}

const TICK = 100 // USER_HZ: /proc times are in clock ticks of 10 ms on Linux

const ticks = (statFile: string) => {
  const stat = readFileSync(statFile, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / TICK
}

/** CPU seconds (user + system) a process has used so far, from /proc (0 when unavailable). */
export function cpuSeconds(pid: number): number {
  return processCpu(pid).total
}

/** The same, and of that its main thread (the event loop). */
export function processCpu(pid: number): { total: number; main: number } {
  try {
    return { total: ticks(`/proc/${pid}/stat`), main: ticks(`/proc/${pid}/task/${pid}/stat`) }
  } catch {
    return { total: 0, main: 0 }
  }
}

/** Measure the CPU the server and this (load generator) process use while `run` goes. */
export async function withCpu<T>(serverPid: number, run: () => Promise<T>) {
  const s0 = processCpu(serverPid)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await run()
  const wall = (performance.now() - t0) / 1000
  const s1 = processCpu(serverPid)
  const c = process.cpuUsage(c0)
  return {
    result,
    wall,
    /** Cores (0..2 here) each side kept busy on average; the server's event loop alone can use at most one. */
    serverCores: (s1.total - s0.total) / wall,
    serverMainCores: (s1.main - s0.main) / wall,
    clientCores: (c.user + c.system) / 1e6 / wall,
  }
}

export async function enroll(url: string, cls: string, n: number) {
  await api(url, 'POST', '/api/v1/admin/classes', { name: cls }).catch(() => {})
  const { secret } = await api(url, 'POST', '/api/v1/admin/enroll-secrets', { class: cls })
  const tokens: string[] = []
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, k) =>
        api(url, 'POST', '/api/v1/enroll', {
          secret,
          hardwareId: `bench-${cls}-${i + k}-${randomBytes(4).toString('hex')}`,
          hostname: `host-${i + k}`,
          os: 'linux',
          agentVersion: '0.1.0',
        }),
      ),
    )
    tokens.push(...batch.map((b: { deviceToken: string }) => b.deviceToken))
  }
  return tokens
}

const REPORT_TEMPLATE = (() => {
  const findings = [0, 1, 2].map((i) => ({
    id: `f${i}`,
    appId: 'telegram',
    appName: 'Telegram',
    policy: 'ban-telegram',
    signal: i === 0 ? 'process-name' : i === 1 ? 'package' : 'artifact',
    matched: 'telegram-desktop',
    subject: `/usr/bin/telegram-desktop-${i}`,
    evidence: { pid: 4000 + i, user: 'alice', sha256: randomBytes(32).toString('hex') },
  }))
  return JSON.stringify({
    reportId: '@ID@',
    bundleVersion: 1,
    scannedAt: '@AT@',
    findings,
    actions: findings.map((f) => ({ finding: f.id, action: 'kill', result: 'success' })),
    inventory: { processes: 512, packages: 1500, apps: 12, connections: 80, durationMs: 180 },
  }).split(/"@(?:ID|AT)@"/)
})()

/** A realistic report: ~1 KB JSON, 3 findings with evidence and their actions, with a reportId made as the agent
 * makes it (cheap to make: the load generator must not be what limits the measurement). */
export function makeReport(): string {
  const [a, b, c] = REPORT_TEMPLATE
  return `${a}"${timeOrderedUuid()}"${b}"${new Date().toISOString()}"${c}`
}
