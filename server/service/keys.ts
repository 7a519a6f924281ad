// The Ed25519 policy signing key: a 0600 file in the data dir, created on first start. Its public key is recorded in
// the database, so a second instance on the same PostgreSQL with a different key refuses to start instead of signing
// bundles that enrolled agents (which pinned the first key) would reject.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { generateSigningKey, keyIdOf } from '../../policies/sign.js'
import type { Db } from '../storage/db.js'

export interface SigningKey {
  privateKeyPem: string
  publicKeyPem: string
  keyId: string
  file: string
}

async function getSetting(db: Db, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst()
  return row?.value
}

export async function loadOrCreateSigningKey(
  db: Db,
  file: string,
): Promise<{ key: SigningKey; created: boolean; warnings: string[] }> {
  const warnings: string[] = []
  const recorded = await getSetting(db, 'policy_public_key')
  let created = false
  let privateKeyPem: string
  if (existsSync(file)) {
    privateKeyPem = readFileSync(file, 'utf8')
    const mode = statSync(file).mode & 0o777
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      chmodSync(file, 0o600)
      warnings.push(`signing key ${file} was readable by others (mode ${mode.toString(8)}); changed to 600`)
    }
  } else {
    if (recorded) {
      throw new Error(
        `the database's bundles are signed by key ${keyIdOf(recorded)}, but ${file} does not exist: ` +
          'copy signing-key.pem from the first instance (agents pinned that key at enrollment)',
      )
    }
    privateKeyPem = generateSigningKey().privateKeyPem
    // wx: never overwrite a key another process created a moment ago.
    writeFileSync(file, privateKeyPem, { mode: 0o600, flag: 'wx' })
    created = true
  }
  const publicKeyPem = createPublicKey(createPrivateKey(privateKeyPem))
    .export({ type: 'spki', format: 'pem' })
    .toString()
  const keyId = keyIdOf(publicKeyPem)
  if (recorded && keyIdOf(recorded) !== keyId) {
    throw new Error(
      `signing key ${file} (key id ${keyId}) is not the key this database's agents trust (${keyIdOf(recorded)})`,
    )
  }
  if (!recorded) {
    await db
      .insertInto('settings')
      .values({ key: 'policy_public_key', value: publicKeyPem })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute()
    const now = await getSetting(db, 'policy_public_key')
    if (now && keyIdOf(now) !== keyId)
      throw new Error('another instance recorded a different signing key at the same time')
  }
  return { key: { privateKeyPem, publicKeyPem, keyId, file }, created, warnings }
}
