// The audit log: every admin action, written in the same transaction as the change it records.
import type { Db } from '../storage/db.js'
import type { Principal } from './auth.js'

export async function writeAudit(
  db: Db,
  actor: Principal | undefined,
  action: string,
  target: string | null,
  details: Record<string, unknown> = {},
) {
  await db
    .insertInto('audit')
    .values({
      at: Date.now(),
      actor: actor?.tokenId ?? null,
      role: actor?.role ?? null,
      action,
      target,
      details: JSON.stringify(details),
    })
    .execute()
}
