// The policy language: one TypeBox schema gives both runtime validation (JSON Schema, also used by the server's routes)
// and the TypeScript types. Semantic checks the schema cannot express (over-broad rules) live in validate.ts.
import Type from 'typebox'

const Str = Type.String({ minLength: 1, maxLength: 512 })
const List = (item = Str) => Type.Array(item, { maxItems: 4096 })

export const ACTIONS = ['report', 'kill', 'quarantine', 'uninstall', 'block-network', 'notify'] as const
export const Action = Type.Union([
  Type.Literal('report'),
  Type.Literal('kill'),
  Type.Literal('quarantine'),
  Type.Literal('uninstall'),
  Type.Literal('block-network'),
  Type.Literal('notify'),
])
export type Action = (typeof ACTIONS)[number]

export const ClassName = Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$', description: 'device class, e.g. military' })

export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lower-case hex SHA-256' })

export const MatchSpec = Type.Object(
  {
    processNames: Type.Optional(List()),
    /** Absolute paths or globs (`*` within one segment, `**` across segments, `~` = any user's home). */
    paths: Type.Optional(List()),
    sha256: Type.Optional(List(Sha256)),
    packages: Type.Optional(
      Type.Object(
        {
          deb: Type.Optional(List()),
          rpm: Type.Optional(List()),
          snap: Type.Optional(List()),
          flatpak: Type.Optional(List()),
        },
        { additionalProperties: false },
      ),
    ),
    bundleIds: Type.Optional(List()),
    teamIds: Type.Optional(List(Type.String({ pattern: '^[A-Z0-9]{10}$' }))),
    signers: Type.Optional(List()),
    windows: Type.Optional(
      Type.Object(
        {
          uninstallKeys: Type.Optional(List()),
          displayNames: Type.Optional(List()),
          publishers: Type.Optional(List()),
          appxFamilies: Type.Optional(List()),
          peProductNames: Type.Optional(List()),
        },
        { additionalProperties: false },
      ),
    ),
    /** Byte strings inside the executable (UTF-8 text, or `hex:` followed by hex bytes); each at least 8 bytes. */
    binaryMarkers: Type.Optional(List()),
    /** App data folders; `~` = every user's home, `%APPDATA%`/`%LOCALAPPDATA%` on Windows. */
    artifacts: Type.Optional(List()),
    network: Type.Optional(
      Type.Object({ cidrs: Type.Optional(List()), domains: Type.Optional(List()) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
)
export type MatchSpec = Type.Static<typeof MatchSpec>

export const AppRule = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    name: Str,
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    match: MatchSpec,
  },
  { additionalProperties: false },
)
export type AppRule = Type.Static<typeof AppRule>

export const Assignment = Type.Object(
  {
    actions: Type.Array(Action, { minItems: 1, maxItems: ACTIONS.length, uniqueItems: true }),
    /** Text shown to the user by `notify`; a default names the app and the policy. */
    message: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
)
export type Assignment = Type.Static<typeof Assignment>

export const Exemption = Type.Object(
  {
    device: Type.Optional(Str),
    class: Type.Optional(ClassName),
    apps: Type.Optional(List()),
    reason: Str,
    approvedBy: Str,
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
)
export type Exemption = Type.Static<typeof Exemption>

export const PolicyFile = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    title: Str,
    source: Type.Optional(Type.String({ maxLength: 2048 })),
    apps: Type.Array(AppRule, { minItems: 1, maxItems: 1024 }),
    assignments: Type.Record(ClassName, Assignment),
    exemptions: Type.Optional(Type.Array(Exemption, { maxItems: 10_000 })),
  },
  { additionalProperties: false },
)
export type PolicyFile = Type.Static<typeof PolicyFile>

/** One app as it reaches an agent: the rule plus what this device class does about it. */
export const BundleApp = Type.Object(
  {
    policy: Type.String(),
    id: Type.String(),
    name: Type.String(),
    match: MatchSpec,
    actions: Type.Array(Action),
    message: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
export type BundleApp = Type.Static<typeof BundleApp>

/** The signed, per-class unit of policy (TUF-style: class, monotonic version, issue and expiry times). */
export const BundlePayload = Type.Object(
  {
    schema: Type.Literal(1),
    class: ClassName,
    version: Type.Integer({ minimum: 1 }),
    issuedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
    apps: Type.Array(BundleApp),
    exemptions: Type.Array(Exemption),
  },
  { additionalProperties: false },
)
export type BundlePayload = Type.Static<typeof BundlePayload>

export const SignedBundle = Type.Object(
  {
    payload: BundlePayload,
    signature: Type.Object(
      {
        alg: Type.Literal('ed25519'),
        keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }),
        sig: Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export type SignedBundle = Type.Static<typeof SignedBundle>
