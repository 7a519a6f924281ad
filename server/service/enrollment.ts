// Enrollment: an enroll secret (created per class by an admin) binds a device to that class. The device never chooses
// its class. Re-enrolling the same hardware id keeps the device id and history but revokes every older token.
import type { EnrollBody } from '../protocol.js'
import type { Db } from '../storage/db.js'
import type { AuthService } from './auth.js'
import type { SigningKey } from './keys.js'
import { ApiError, hashSecret, newId, newSecret } from './util.js'

export class EnrollmentService {
  constructor(
    private readonly db: Db,
    private readonly auth: AuthService,
    private readonly key: SigningKey,
    private readonly heartbeatIntervalSec: number,
    private readonly onRevoke: () => void,
  ) {}

  async enroll(body: EnrollBody) {
    const now = Date.now()
    const secretHash = hashSecret(body.secret)
    const token = newSecret('dev')
    const result = await this.db.transaction().execute(async (trx) => {
      const secret = await trx
        .selectFrom('enroll_secrets')
        .select(['id', 'class'])
        .where('hash', '=', secretHash)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst()
      if (!secret) throw new ApiError(401, 'invalid_secret', 'enrollment secret is unknown, revoked or expired')
      // Conditional increment: concurrent enrollments cannot exceed max_uses.
      const used = await trx
        .updateTable('enroll_secrets')
        .set((eb) => ({ uses: eb('uses', '+', 1) }))
        .where('id', '=', secret.id)
        .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
        .executeTakeFirst()
      if (used.numUpdatedRows === 0n) throw new ApiError(401, 'invalid_secret', 'enrollment secret has been used up')
      const existing = await trx
        .selectFrom('devices')
        .select(['id', 'class', 'status'])
        .where('hardware_id', '=', body.hardwareId)
        .executeTakeFirst()
      let deviceId: string
      let replaced = 0
      if (existing) {
        deviceId = existing.id
        const r = await trx
          .updateTable('tokens')
          .set({ revoked_at: now })
          .where('device_id', '=', deviceId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        replaced = Number(r.numUpdatedRows)
        const keepStatus = existing.class === secret.class && existing.status !== 'revoked'
        await trx
          .updateTable('devices')
          .set({
            class: secret.class,
            hostname: body.hostname,
            os: body.os,
            agent_version: body.agentVersion,
            last_seen: now,
            revoked_at: null,
            ...(keepStatus
              ? {}
              : { status: 'pending' as const, open_findings: 0, last_report_at: null, last_report_id: null }),
          })
          .where('id', '=', deviceId)
          .execute()
      } else {
        deviceId = newId('dev')
        await trx
          .insertInto('devices')
          .values({
            id: deviceId,
            hardware_id: body.hardwareId,
            class: secret.class,
            hostname: body.hostname,
            os: body.os,
            agent_version: body.agentVersion,
            enrolled_at: now,
            last_seen: now,
            last_report_at: null,
            last_report_id: null,
            last_heartbeat_at: null,
            status: 'pending',
            open_findings: 0,
            bundle_version: null,
            health: null,
            revoked_at: null,
          })
          .execute()
      }
      await trx
        .insertInto('tokens')
        .values({
          id: newId('tok'),
          hash: hashSecret(token),
          role: 'device',
          label: body.hostname,
          device_id: deviceId,
          created_at: now,
          created_by: secret.id,
          revoked_at: null,
        })
        .execute()
      return { deviceId, class: secret.class, replaced }
    })
    if (result.replaced > 0) {
      this.auth.flush()
      this.onRevoke()
    }
    return {
      deviceId: result.deviceId,
      deviceToken: token,
      class: result.class,
      policyKey: this.key.publicKeyPem,
      policyKeyId: this.key.keyId,
      heartbeatIntervalSec: this.heartbeatIntervalSec,
    }
  }
}
