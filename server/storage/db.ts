// Opens the one storage interface on either backend: SQLite (better-sqlite3, default, in the data dir) or PostgreSQL
// (pg pool). Everything above this file is the same Kysely code for both; only opening, tuning and cross-instance
// notification differ.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { migrate } from './migrations.js'
import type { DB } from './schema.js'
import { type IngestWriter, openSqliteWriter, tuneSqlite } from './sqlite-ingest.js'

export type Dialect = 'sqlite' | 'postgres'

export type Db = Kysely<DB>

export interface Notifier {
  /** Deliver an event to every server instance sharing this database (including this one). */
  publish(event: ServerEvent): Promise<void>
  subscribe(handler: (event: ServerEvent) => void): void
  close(): Promise<void>
}

export type ServerEvent = { type: 'bundle'; class: string; version: number } | { type: 'auth-flush' }

export interface Storage {
  db: Db
  dialect: Dialect
  notifier: Notifier
  /** Where it lives, for logs (never includes a password). */
  location: string
  /** SQLite: the report writer (its own connection, in a worker thread). PostgreSQL ingests through `db`. */
  ingest?: IngestWriter
  close(): Promise<void>
}

export interface StorageOptions {
  dataDir: string
  databaseUrl?: string
}

class LocalNotifier implements Notifier {
  private handlers: ((e: ServerEvent) => void)[] = []
  async publish(event: ServerEvent) {
    for (const h of this.handlers) h(event)
  }
  subscribe(handler: (e: ServerEvent) => void) {
    this.handlers.push(handler)
  }
  async close() {
    this.handlers = []
  }
}

// LISTEN needs one long-lived connection of its own (a pooled one would be handed to queries); reconnects with backoff.
class PgNotifier implements Notifier {
  private handlers: ((e: ServerEvent) => void)[] = []
  private client: pg.Client | undefined
  private closed = false
  private retry: NodeJS.Timeout | undefined

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly pool: pg.Pool,
    readonly channel: string,
    private readonly onError: (err: Error) => void,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client(this.config)
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel || !msg.payload) return
      try {
        const event = JSON.parse(msg.payload) as ServerEvent
        for (const h of this.handlers) h(event)
      } catch {
        // A foreign payload on our channel is ignored rather than crashing the listener.
      }
    })
    client.on('error', (err) => {
      this.onError(err)
      this.reconnect()
    })
    client.on('end', () => this.reconnect())
    await client.connect()
    await client.query(`LISTEN "${this.channel}"`)
    this.client = client
  }

  private reconnect() {
    if (this.closed || this.retry) return
    this.client = undefined
    this.retry = setTimeout(() => {
      this.retry = undefined
      this.start()
        // After a gap we may have missed events: tell subscribers to resynchronise.
        .then(() => {
          for (const h of this.handlers) h({ type: 'auth-flush' })
        })
        .catch((err: Error) => {
          this.onError(err)
          this.reconnect()
        })
    }, 1000)
    this.retry.unref()
  }

  async publish(event: ServerEvent) {
    await this.pool.query('select pg_notify($1, $2)', [this.channel, JSON.stringify(event)])
  }

  subscribe(handler: (e: ServerEvent) => void) {
    this.handlers.push(handler)
  }

  async close() {
    this.closed = true
    if (this.retry) clearTimeout(this.retry)
    const c = this.client
    this.client = undefined
    if (c) {
      c.removeAllListeners('end')
      c.removeAllListeners('error')
      c.on('error', () => {})
      await c.end().catch(() => {})
    }
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://(unparsable url)'
  }
}

/**
 * The better-sqlite3 connection as Kysely sees it, with two changes:
 * - statements are prepared once per SQL text (Kysely prepares every query again; the auth lookup behind each request
 *   and the other hot queries are a handful of fixed texts; the cache is bounded for the rest);
 * - `begin` becomes `begin immediate`: the report writer uses a second connection, and a deferred transaction that
 *   has read and then wants to write fails at once (SQLITE_BUSY, no retry) if that connection committed meanwhile.
 *   Taking the write lock at BEGIN waits (busy_timeout) instead.
 */
function withStatementCache(sqlite: Database.Database) {
  const cache = new Map<string, Database.Statement>()
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      const text = sql === 'begin' ? 'begin immediate' : sql
      let stmt = cache.get(text)
      if (stmt) return stmt
      stmt = sqlite.prepare(text)
      if (cache.size >= 500) cache.clear()
      cache.set(text, stmt)
      return stmt
    },
  }
}

export async function openStorage(
  opts: StorageOptions,
  onError: (err: Error) => void = () => {},
): Promise<Storage & { migrated: string[] }> {
  if (opts.databaseUrl) {
    // bigint (epoch ms, counts) as JS numbers: every value we store fits in 2^53.
    const types = {
      getTypeParser: ((oid: number, format?: string) =>
        oid === 20
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    }
    const config: pg.PoolConfig = { connectionString: opts.databaseUrl, max: 10, types }
    const pool = new pg.Pool(config)
    pool.on('error', onError)
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
    const schema = (await sql<{ s: string | null }>`select current_schema() as s`.execute(db)).rows[0]?.s
    if (!schema) throw new Error('PostgreSQL: no current schema (check search_path and that the schema exists)')
    const migrated = await migrate(db, 'postgres', schema)
    // One channel per schema, so separate deployments (or test runs) sharing a server do not wake each other.
    const notifier = new PgNotifier({ connectionString: opts.databaseUrl }, pool, `interdict_${schema}`, onError)
    await notifier.start()
    return {
      db,
      dialect: 'postgres',
      notifier,
      migrated,
      location: redact(opts.databaseUrl),
      async close() {
        await notifier.close()
        await db.destroy()
      },
    }
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 })
  const file = join(opts.dataDir, 'interdict.db')
  const sqlite = new Database(file)
  // FULL: in WAL mode every COMMIT is fsynced before it returns, so what we acknowledged survives a power cut, not just
  // kill -9 of the process (NORMAL would survive kill -9 too: a committed transaction is in the WAL file, which the OS
  // keeps when the process dies; only power loss or a kernel crash could take the last commits). The report writer
  // commits in batches on its own thread, so the fsync costs neither the event loop nor one per report.
  tuneSqlite(sqlite, 'FULL')
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) })
  const migrated = await migrate(db, 'sqlite')
  const ingest = openSqliteWriter(file, 'FULL', onError)
  if (ingest.checkpoints) sqlite.pragma('wal_autocheckpoint = 0')
  const notifier = new LocalNotifier()
  return {
    db,
    dialect: 'sqlite',
    notifier,
    migrated,
    location: file,
    ingest,
    async close() {
      await notifier.close()
      await ingest.close()
      await db.destroy()
    },
  }
}
