// Versioned schema migrations, run at start (Kysely's Migrator takes a lock, so several instances may start at once).
// Append new entries; never edit one that has shipped.
import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely'
import type { Dialect } from './db.js'

function migrations(dialect: Dialect): Record<string, Migration> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer'
  return {
    '0001_initial': {
      // biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was, not today's DB type
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('settings')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('classes')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('description', 'text')
          .addColumn('created_at', big, (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('label', 'text')
          .addColumn('device_id', 'text')
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('revoked_at', big)
          .execute()
        await db.schema.createIndex('tokens_device').on('tokens').column('device_id').execute()
        await db.schema
          .createTable('enroll_secrets')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .addColumn('class', 'text', (c) => c.notNull().references('classes.name'))
          .addColumn('label', 'text')
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('expires_at', big)
          .addColumn('max_uses', 'integer')
          .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('revoked_at', big)
          .execute()
        await db.schema
          .createTable('devices')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('hardware_id', 'text', (c) => c.notNull().unique())
          .addColumn('class', 'text', (c) => c.notNull().references('classes.name'))
          .addColumn('hostname', 'text', (c) => c.notNull())
          .addColumn('os', 'text', (c) => c.notNull())
          .addColumn('agent_version', 'text', (c) => c.notNull())
          .addColumn('enrolled_at', big, (c) => c.notNull())
          .addColumn('last_seen', big, (c) => c.notNull())
          .addColumn('last_report_at', big)
          .addColumn('last_report_id', 'text')
          .addColumn('last_heartbeat_at', big)
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('open_findings', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('bundle_version', 'integer')
          .addColumn('health', 'text')
          .addColumn('revoked_at', big)
          .execute()
        // The compliance summary is one GROUP BY over this covering index (class, status, last_seen).
        await db.schema
          .createIndex('devices_class_status_seen')
          .on('devices')
          .columns(['class', 'status', 'last_seen'])
          .execute()
        await db.schema.createIndex('devices_seen').on('devices').column('last_seen').execute()
        await db.schema
          .createTable('policy_sets')
          .addColumn('version', 'integer', (c) => c.primaryKey())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('policies', 'text', (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('bundles')
          .addColumn('class', 'text', (c) => c.notNull().references('classes.name'))
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('issued_at', big, (c) => c.notNull())
          .addColumn('expires_at', big, (c) => c.notNull())
          .addColumn('content_hash', 'text', (c) => c.notNull())
          .addColumn('policy_set', 'integer', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('signed', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('bundles_pk', ['class', 'version'])
          .execute()
        await db.schema
          .createTable('reports')
          .addColumn('report_id', 'text', (c) => c.primaryKey())
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('class', 'text', (c) => c.notNull())
          .addColumn('bundle_version', 'integer', (c) => c.notNull())
          .addColumn('scanned_at', big, (c) => c.notNull())
          .addColumn('received_at', big, (c) => c.notNull())
          .addColumn('findings', 'integer', (c) => c.notNull())
          .addColumn('open_findings', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('actions', 'text', (c) => c.notNull())
          .addColumn('inventory', 'text', (c) => c.notNull())
          .execute()
        await db.schema.createIndex('reports_device').on('reports').columns(['device_id', 'scanned_at']).execute()
        // Findings are the bulk of every write: a rowid key (no random-text index) and only the indexes the
        // queries need (app, device, time; class filters ride on the time index).
        let findings = db.schema.createTable('findings')
        findings =
          dialect === 'postgres'
            ? findings.addColumn('seq', 'bigserial', (c) => c.primaryKey())
            : findings.addColumn('seq', 'integer', (c) => c.primaryKey())
        await findings
          .addColumn('report_id', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('class', 'text', (c) => c.notNull())
          .addColumn('app_id', 'text', (c) => c.notNull())
          .addColumn('app_name', 'text')
          .addColumn('policy', 'text')
          .addColumn('signal', 'text', (c) => c.notNull())
          .addColumn('matched', 'text')
          .addColumn('subject', 'text')
          .addColumn('evidence', 'text', (c) => c.notNull())
          .addColumn('actions', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('scanned_at', big, (c) => c.notNull())
          .execute()
        await db.schema.createIndex('findings_time').on('findings').column('scanned_at').execute()
        await db.schema.createIndex('findings_app').on('findings').columns(['app_id', 'scanned_at']).execute()
        await db.schema.createIndex('findings_device').on('findings').columns(['device_id', 'scanned_at']).execute()
        let audit = db.schema.createTable('audit')
        audit =
          dialect === 'postgres'
            ? audit.addColumn('seq', 'bigserial', (c) => c.primaryKey())
            : audit.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        await audit
          .addColumn('at', big, (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('role', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text')
          .addColumn('details', 'text', (c) => c.notNull())
          .execute()
        await db.schema.createIndex('audit_at').on('audit').column('at').execute()
      },
    },
    // Exemptions granted through the API, webhooks and their delivery log, and the state behind the "new violation"
    // and "device silent" events (so each fires once, on any instance).
    '0002_integrations': {
      // biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was, not today's DB type
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('exemptions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('app', 'text', (c) => c.notNull())
          .addColumn('device', 'text')
          .addColumn('class', 'text')
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('approved_by', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('expires_at', big, (c) => c.notNull())
          .addColumn('revoked_at', big)
          .addColumn('revoked_by', 'text')
          .execute()
        await db.schema.createIndex('exemptions_expiry').on('exemptions').columns(['expires_at']).execute()
        await db.schema
          .createTable('webhooks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('format', 'text', (c) => c.notNull())
          .addColumn('description', 'text')
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('deleted_at', big)
          .execute()
        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('webhook_id', 'text', (c) => c.notNull())
          .addColumn('event', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', big, (c) => c.notNull())
          .addColumn('claimed_by', 'text')
          .addColumn('claimed_until', big)
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('finished_at', big)
          .addColumn('last_error', 'text')
          .execute()
        await db.schema
          .createIndex('webhook_deliveries_due')
          .on('webhook_deliveries')
          .columns(['status', 'next_attempt_at'])
          .execute()
        await db.schema
          .createIndex('webhook_deliveries_hook')
          .on('webhook_deliveries')
          .columns(['webhook_id', 'created_at'])
          .execute()
        let attempts = db.schema.createTable('webhook_attempts')
        attempts =
          dialect === 'postgres'
            ? attempts.addColumn('seq', 'bigserial', (c) => c.primaryKey())
            : attempts.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        await attempts
          .addColumn('delivery_id', 'text', (c) => c.notNull())
          .addColumn('webhook_id', 'text', (c) => c.notNull())
          .addColumn('attempt', 'integer', (c) => c.notNull())
          .addColumn('at', big, (c) => c.notNull())
          .addColumn('status_code', 'integer')
          .addColumn('error', 'text')
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('instance', 'text')
          .execute()
        await db.schema.createIndex('webhook_attempts_delivery').on('webhook_attempts').column('delivery_id').execute()
        // One row per (device, app) that has been seen open; closed_at set when a full scan no longer finds it.
        await db.schema
          .createTable('violations')
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('app_id', 'text', (c) => c.notNull())
          .addColumn('opened_at', big, (c) => c.notNull())
          .addColumn('last_seen', big, (c) => c.notNull())
          .addColumn('closed_at', big)
          .addPrimaryKeyConstraint('violations_pk', ['device_id', 'app_id'])
          .execute()
        // The devices.last_seen value a "device silent" event was sent for: a later silence has a newer one.
        await db.schema
          .createTable('silent_alerts')
          .addColumn('device_id', 'text', (c) => c.primaryKey())
          .addColumn('last_seen', big, (c) => c.notNull())
          .addColumn('alerted_at', big, (c) => c.notNull())
          .execute()
      },
    },
    // Hourly compliance counts per class for the dashboard's chart; (class, hour) is the key so instances racing to
    // write the same hour insert once.
    '0003_dashboard': {
      // biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was, not today's DB type
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('compliance_snapshots')
          .addColumn('class', 'text', (c) => c.notNull())
          .addColumn('hour', big, (c) => c.notNull())
          .addColumn('taken_at', big, (c) => c.notNull())
          .addColumn('total', 'integer', (c) => c.notNull())
          .addColumn('compliant', 'integer', (c) => c.notNull())
          .addColumn('noncompliant', 'integer', (c) => c.notNull())
          .addColumn('remediated', 'integer', (c) => c.notNull())
          .addColumn('unknown', 'integer', (c) => c.notNull())
          .addColumn('pending', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('compliance_snapshots_pk', ['class', 'hour'])
          .execute()
        await db.schema.createIndex('compliance_snapshots_hour').on('compliance_snapshots').column('hour').execute()
      },
    },
  }
}

class InCodeProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations() {
    return migrations(this.dialect)
  }
}

/**
 * `schema` (PostgreSQL): the schema to keep Kysely's bookkeeping tables in. Without it Kysely looks for them in
 * every schema and may find another deployment's (or test run's) tables on the same server.
 */
// biome-ignore lint/suspicious/noExplicitAny: the migrator is schema-agnostic
export async function migrate(db: Kysely<any>, dialect: Dialect, schema?: string): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new InCodeProvider(dialect),
    ...(schema ? { migrationTableSchema: schema } : {}),
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error instanceof Error ? error : new Error(`migration failed: ${String(error)}`)
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}
