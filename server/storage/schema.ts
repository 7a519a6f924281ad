// Table types for Kysely. Times are epoch milliseconds (bigint in PostgreSQL, integer in SQLite) and structured values
// are JSON text, so one query builder expression means the same thing on both backends.
import type { Generated } from 'kysely'

export type Role = 'admin' | 'auditor' | 'device'
/** Stored per device; `unknown` is derived at query time from last_seen, so it needs no background job. */
export type StoredStatus = 'pending' | 'compliant' | 'noncompliant' | 'remediated' | 'revoked'
export type Status = Exclude<StoredStatus, 'revoked'> | 'unknown'
export const STATUSES: readonly Status[] = ['compliant', 'noncompliant', 'remediated', 'unknown', 'pending']

export interface SettingsTable {
  key: string
  value: string
}

export interface ClassesTable {
  name: string
  description: string | null
  created_at: number
}

export interface TokensTable {
  id: string
  hash: string
  role: Role
  label: string | null
  device_id: string | null
  created_at: number
  created_by: string | null
  revoked_at: number | null
}

export interface EnrollSecretsTable {
  id: string
  hash: string
  class: string
  label: string | null
  created_at: number
  created_by: string | null
  expires_at: number | null
  max_uses: number | null
  uses: number
  revoked_at: number | null
}

export interface DevicesTable {
  id: string
  hardware_id: string
  class: string
  hostname: string
  os: string
  agent_version: string
  enrolled_at: number
  last_seen: number
  last_report_at: number | null
  last_report_id: string | null
  last_heartbeat_at: number | null
  status: StoredStatus
  open_findings: number
  bundle_version: number | null
  health: string | null
  revoked_at: number | null
}

export interface PolicySetsTable {
  version: number
  created_at: number
  actor: string | null
  policies: string
}

export interface BundlesTable {
  class: string
  version: number
  issued_at: number
  expires_at: number
  content_hash: string
  policy_set: number
  reason: string
  signed: string
}

export interface ReportsTable {
  report_id: string
  device_id: string
  class: string
  bundle_version: number
  scanned_at: number
  received_at: number
  findings: number
  open_findings: number
  status: StoredStatus
  actions: string
  inventory: string
}

export interface FindingsTable {
  seq: Generated<number>
  report_id: string
  device_id: string
  class: string
  app_id: string
  app_name: string | null
  policy: string | null
  signal: string
  matched: string | null
  subject: string | null
  evidence: string
  actions: string
  status: 'open' | 'remediated' | 'exempted'
  scanned_at: number
}

export interface AuditTable {
  seq: Generated<number>
  at: number
  actor: string | null
  role: string | null
  action: string
  target: string | null
  details: string
}

export interface ExemptionsTable {
  id: string
  app: string
  device: string | null
  class: string | null
  reason: string
  approved_by: string
  created_at: number
  created_by: string | null
  expires_at: number
  revoked_at: number | null
  revoked_by: string | null
}

export interface WebhooksTable {
  id: string
  url: string
  /** Kept as is: an HMAC needs the secret itself, not a digest. */
  secret: string
  events: string
  format: 'json' | 'slack' | 'teams'
  description: string | null
  created_at: number
  created_by: string | null
  deleted_at: number | null
}

export type DeliveryStatus = 'pending' | 'sending' | 'delivered' | 'failed' | 'cancelled'

export interface WebhookDeliveriesTable {
  id: string
  webhook_id: string
  event: string
  payload: string
  status: DeliveryStatus
  attempts: number
  next_attempt_at: number
  claimed_by: string | null
  claimed_until: number | null
  created_at: number
  finished_at: number | null
  last_error: string | null
}

export interface WebhookAttemptsTable {
  seq: Generated<number>
  delivery_id: string
  webhook_id: string
  attempt: number
  at: number
  status_code: number | null
  error: string | null
  duration_ms: number
  instance: string | null
}

export interface ViolationsTable {
  device_id: string
  app_id: string
  opened_at: number
  last_seen: number
  closed_at: number | null
}

export interface SilentAlertsTable {
  device_id: string
  last_seen: number
  alerted_at: number
}

/** One row per class per hour (`hour` = epoch ms at the start of the hour), written by the dashboard's timer. */
export interface ComplianceSnapshotsTable {
  class: string
  hour: number
  taken_at: number
  total: number
  compliant: number
  noncompliant: number
  remediated: number
  unknown: number
  pending: number
}

export interface DB {
  settings: SettingsTable
  classes: ClassesTable
  tokens: TokensTable
  enroll_secrets: EnrollSecretsTable
  devices: DevicesTable
  policy_sets: PolicySetsTable
  bundles: BundlesTable
  reports: ReportsTable
  findings: FindingsTable
  audit: AuditTable
  exemptions: ExemptionsTable
  webhooks: WebhooksTable
  webhook_deliveries: WebhookDeliveriesTable
  webhook_attempts: WebhookAttemptsTable
  violations: ViolationsTable
  silent_alerts: SilentAlertsTable
  compliance_snapshots: ComplianceSnapshotsTable
}
