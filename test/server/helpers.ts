// Test helpers: a real server on an ephemeral port over a real database (SQLite in a temp dir; PostgreSQL in a fresh
// schema when INTERDICT_TEST_PG is set), and a tiny fetch client.
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { buildApp, type ServerOptions } from '../../server/app.js'

export type Backend = 'sqlite' | 'postgres'
export const PG_URL = process.env.INTERDICT_TEST_PG
export const backends: Backend[] = PG_URL ? ['sqlite', 'postgres'] : ['sqlite']

export const ADMIN = `idt_adm_test_${randomBytes(12).toString('hex')}`

/** A database for one test file: a temp dir (SQLite) or a new PostgreSQL schema; drop() removes it. */
export async function makeDatabase(backend: Backend) {
  const dataDir = mkdtempSync(join(tmpdir(), 'interdict-test-'))
  if (backend === 'sqlite') {
    return { dataDir, databaseUrl: undefined, drop: async () => rmSync(dataDir, { recursive: true, force: true }) }
  }
  const schema = `t_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`create schema ${schema}`)
  await admin.end()
  const u = new URL(PG_URL!)
  u.searchParams.set('options', `-c search_path=${schema}`)
  return {
    dataDir,
    databaseUrl: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`drop schema if exists ${schema} cascade`)
      await c.end()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface TestServer {
  url: string
  app: Awaited<ReturnType<typeof buildApp>>['app']
  ctx: Awaited<ReturnType<typeof buildApp>>['ctx']
  close: () => Promise<void>
}

export async function startServer(db: { dataDir: string; databaseUrl?: string }, opts: Partial<ServerOptions> = {}) {
  const { app, ctx } = await buildApp({
    dataDir: db.dataDir,
    databaseUrl: db.databaseUrl,
    logger: false,
    adminToken: ADMIN,
    ...opts,
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return { url: `http://127.0.0.1:${port}`, app, ctx, close: () => app.close() } satisfies TestServer
}

// biome-ignore lint/suspicious/noExplicitAny: tests assert on reply shapes directly
export interface Res<T = any> {
  status: number
  body: T
  headers: Headers
  text: string
}

// biome-ignore lint/suspicious/noExplicitAny: tests assert on reply shapes directly
export async function call<T = any>(
  url: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  let body: string | undefined
  if (opts.raw !== undefined) {
    body = opts.raw
    headers['content-type'] ??= 'application/json'
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body)
    headers['content-type'] = 'application/json'
  }
  const r = await fetch(url + path, { method, headers, body })
  const text = await r.text()
  let parsed: unknown = text
  if ((r.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text)
  return { status: r.status, body: parsed as T, headers: r.headers, text }
}

export const POLICY_YAML = `
id: ban-chatapp
title: Chat app is banned
apps:
  - id: chatapp
    name: ChatApp
    match:
      processNames: [chatapp-desktop]
      packages: { deb: [chatapp-desktop] }
assignments:
  military: { actions: [report, kill, quarantine] }
  standard: { actions: [report] }
`

export const POLICY_2 = {
  id: 'ban-other',
  title: 'Other app',
  apps: [{ id: 'otherapp', name: 'OtherApp', match: { processNames: ['otherapp-bin'] } }],
  assignments: { military: { actions: ['report', 'kill'] } },
}

/** A new auditor token, created as admin. */
export async function createAuditor(url: string): Promise<{ id: string; token: string }> {
  return (await call(url, 'POST', '/api/v1/admin/tokens', { token: ADMIN, body: { role: 'auditor' } })).body
}

/** Create a class and an enroll secret as admin; enroll `n` devices; returns their tokens. */
export async function enrollDevices(url: string, cls: string, n: number, prefix = 'hw') {
  const classes = await call(url, 'GET', '/api/v1/admin/classes', { token: ADMIN })
  if (!classes.body.classes.some((c: { name: string }) => c.name === cls)) {
    const c = await call(url, 'POST', '/api/v1/admin/classes', { token: ADMIN, body: { name: cls } })
    if (c.status !== 201) throw new Error(`class create: ${c.status} ${c.text}`)
  }
  const s = await call(url, 'POST', '/api/v1/admin/enroll-secrets', { token: ADMIN, body: { class: cls } })
  const devices: { deviceId: string; deviceToken: string; hardwareId: string; policyKey: string }[] = []
  for (let i = 0; i < n; i++) {
    const hardwareId = `${prefix}-${cls}-${i}-${randomBytes(3).toString('hex')}`
    const r = await call(url, 'POST', '/api/v1/enroll', {
      body: { secret: s.body.secret, hardwareId, hostname: `host-${i}`, os: 'linux', agentVersion: '0.1.0' },
    })
    if (r.status !== 200) throw new Error(`enroll: ${r.status} ${r.text}`)
    devices.push({ ...r.body, hardwareId })
  }
  return { secret: s.body.secret as string, devices }
}

export function report(over: Partial<Record<string, unknown>> = {}) {
  return {
    reportId: randomUUID(),
    bundleVersion: 1,
    scannedAt: new Date().toISOString(),
    findings: [] as unknown[],
    actions: [] as unknown[],
    inventory: { processes: 312, packages: 1480 },
    ...over,
  }
}

export const finding = (id: string, appId = 'chatapp') => ({
  id,
  appId,
  appName: 'ChatApp',
  policy: 'ban-chatapp',
  signal: 'process-name',
  matched: 'chatapp-desktop',
  subject: '/usr/bin/chatapp-desktop',
  evidence: { pid: 4242, exe: '/usr/bin/chatapp-desktop', user: 'alice' },
})
