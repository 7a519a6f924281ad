// Wire schemas of the device protocol (DESIGN §4) and the admin API. One TypeBox definition gives the route validation
// and the TypeScript types; the agent's sync client can import these to stay in step with the server.
import Type from 'typebox'
import { ACTIONS, ClassName } from '../policies/schema.js'

const Str = (max = 256) => Type.String({ minLength: 1, maxLength: max })
/** Small flat maps (evidence, inventory, health): typed scalar values, bounded size, no nested objects. */
const Scalars = Type.Record(
  Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' }),
  Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean(), Type.Null()]),
  { maxProperties: 48 },
)

export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() })

// ---- device protocol ----

export const EnrollBody = Type.Object(
  {
    secret: Str(256),
    hardwareId: Str(256),
    hostname: Str(255),
    os: Str(128),
    agentVersion: Str(64),
  },
  { additionalProperties: false },
)
export type EnrollBody = Type.Static<typeof EnrollBody>

export const EnrollReply = Type.Object({
  deviceId: Type.String(),
  deviceToken: Type.String(),
  class: Type.String(),
  policyKey: Type.String({ description: 'PEM (SPKI) Ed25519 public key that signs this server’s bundles' }),
  policyKeyId: Type.String(),
  heartbeatIntervalSec: Type.Integer(),
})

export const PolicyQuery = Type.Object(
  { wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 60, description: 'long-poll seconds' })) },
  { additionalProperties: false },
)

export const ActionResult = Type.Union([
  Type.Literal('success'),
  Type.Literal('failed'),
  Type.Literal('skipped'),
  Type.Literal('pending'),
])

export const ReportFinding = Type.Object(
  {
    /** Unique within the report; actions[] refer to it. */
    id: Str(64),
    appId: Str(64),
    appName: Type.Optional(Str(256)),
    policy: Type.Optional(Str(64)),
    signal: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }),
    specificity: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    matched: Type.Optional(Type.String({ maxLength: 1024 })),
    subject: Type.Optional(Type.String({ maxLength: 4096 })),
    evidence: Type.Optional(Scalars),
  },
  { additionalProperties: false },
)
export type ReportFinding = Type.Static<typeof ReportFinding>

export const ReportAction = Type.Object(
  {
    finding: Type.Optional(Str(64)),
    action: Type.Union(ACTIONS.map((a) => Type.Literal(a))),
    result: ActionResult,
    message: Type.Optional(Type.String({ maxLength: 2048 })),
    at: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)
export type ReportAction = Type.Static<typeof ReportAction>

export const ReportBody = Type.Object(
  {
    reportId: Type.String({ format: 'uuid' }),
    bundleVersion: Type.Integer({ minimum: 0 }),
    scannedAt: Type.String({ format: 'date-time' }),
    findings: Type.Array(ReportFinding, { maxItems: 1000 }),
    actions: Type.Array(ReportAction, { maxItems: 5000 }),
    inventory: Scalars,
  },
  { additionalProperties: false },
)
export type ReportBody = Type.Static<typeof ReportBody>

export const ReportReply = Type.Object({
  reportId: Type.String(),
  accepted: Type.Boolean(),
  duplicate: Type.Boolean(),
})

export const HeartbeatBody = Type.Object(
  {
    bundleVersion: Type.Integer({ minimum: 0 }),
    agentVersion: Str(64),
    health: Scalars,
  },
  { additionalProperties: false },
)
export type HeartbeatBody = Type.Static<typeof HeartbeatBody>

// ---- admin API ----

export const RoleName = Type.Union([Type.Literal('admin'), Type.Literal('auditor')])

export const ClassBody = Type.Object(
  { name: ClassName, description: Type.Optional(Type.String({ maxLength: 1024 })) },
  { additionalProperties: false },
)

export const EnrollSecretBody = Type.Object(
  {
    class: ClassName,
    label: Type.Optional(Type.String({ maxLength: 256 })),
    expiresInHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 366 })),
    maxUses: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
)

export const TokenBody = Type.Object(
  { role: RoleName, label: Type.Optional(Type.String({ maxLength: 256 })) },
  { additionalProperties: false },
)

/** A policy file as parsed YAML/JSON (an object), as YAML/JSON text, or as text with its file name (for errors). */
export const PolicyItem = Type.Union([
  Type.String({ minLength: 1, maxLength: 4 * 1024 * 1024 }),
  Type.Object(
    { file: Str(1024), text: Type.String({ minLength: 1, maxLength: 4 * 1024 * 1024 }) },
    { additionalProperties: false },
  ),
  Type.Object({ id: Type.String() }, { additionalProperties: true }),
])

export const PolicyPushBody = Type.Object(
  {
    policies: Type.Array(PolicyItem, { minItems: 1, maxItems: 1000 }),
    dryRun: Type.Optional(Type.Boolean()),
    /** true: the pushed files are the whole policy set; false (default): they add to or replace policies by id. */
    replace: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export type PolicyPushBody = Type.Static<typeof PolicyPushBody>

export const IdParams = Type.Object({ id: Str(128) }, { additionalProperties: false })

const Since = Type.String({
  maxLength: 64,
  description: 'ISO date-time or a duration back from now: 30m, 24h, 7d',
})

export const Format = Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')]))

export const DevicesQuery = Type.Object(
  {
    class: Type.Optional(ClassName),
    status: Type.Optional(
      Type.Union(
        ['compliant', 'noncompliant', 'remediated', 'unknown', 'pending', 'revoked'].map((s) => Type.Literal(s)),
      ),
    ),
    seenSince: Type.Optional(Since),
    seenBefore: Type.Optional(Since),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    format: Format,
  },
  { additionalProperties: false },
)
export type DevicesQuery = Type.Static<typeof DevicesQuery>

export const FindingsQuery = Type.Object(
  {
    app: Type.Optional(Str(64)),
    class: Type.Optional(ClassName),
    device: Type.Optional(Str(128)),
    status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('remediated'), Type.Literal('exempted')])),
    since: Type.Optional(Since),
    until: Type.Optional(Since),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    format: Format,
  },
  { additionalProperties: false },
)
export type FindingsQuery = Type.Static<typeof FindingsQuery>

export const AuditQuery = Type.Object(
  {
    since: Type.Optional(Since),
    until: Type.Optional(Since),
    action: Type.Optional(Str(64)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    format: Format,
  },
  { additionalProperties: false },
)
export type AuditQuery = Type.Static<typeof AuditQuery>

export const FormatQuery = Type.Object({ format: Format }, { additionalProperties: false })
export const HistoryQuery = Type.Object(
  { class: Type.Optional(ClassName), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) },
  { additionalProperties: false },
)
