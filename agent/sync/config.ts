// The enrolled identity: server, device id and token, class and the pinned policy key. Written once by `enroll`
// (mode 0600: the token authenticates the device), read by every other command.
import { createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { ensurePrivateDir, errnoCode, writeFileAtomic } from './fsutil.js'
import { statePaths } from './paths.js'

export interface AgentConfig {
  server: string
  deviceId: string
  deviceToken: string
  class: string
  /** Ed25519 public key (PEM) that every policy bundle must be signed with; pinned at enrollment. */
  policyKey: string
  /** CA certificate (PEM file in the state dir) that the server's TLS certificate must chain to; others refused. */
  caFile?: string
  hardwareId?: string
  /** Heartbeat interval the server asked for at enrollment (it marks a device unknown after 3 missed). */
  heartbeatIntervalSec?: number
  enrolledAt: string
}

export class NotEnrolled extends Error {
  constructor(stateDir: string) {
    super(`this device is not enrolled (no config in ${stateDir}); run: interdict-agent enroll --server URL --secret S`)
    this.name = 'NotEnrolled'
  }
}

/** Structural check of a parsed config (pure); returns a message for the first problem. */
export function configProblem(c: unknown): string | undefined {
  if (typeof c !== 'object' || c === null) return 'not a JSON object'
  const o = c as Record<string, unknown>
  for (const k of ['server', 'deviceId', 'deviceToken', 'class', 'policyKey', 'enrolledAt']) {
    if (typeof o[k] !== 'string' || o[k] === '') return `missing ${k}`
  }
  try {
    new URL(o.server as string)
  } catch {
    return 'server is not a URL'
  }
  try {
    createPublicKey(o.policyKey as string)
  } catch {
    return 'policyKey is not a public key'
  }
  if (o.caFile !== undefined && typeof o.caFile !== 'string') return 'caFile is not a path'
  return undefined
}

export async function loadConfig(stateDir: string): Promise<AgentConfig> {
  let text: string
  try {
    text = await readFile(statePaths(stateDir).config, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new NotEnrolled(stateDir)
    throw err
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error(`${statePaths(stateDir).config} is not valid JSON; re-enroll this device`)
  }
  const problem = configProblem(parsed)
  if (problem) throw new Error(`${statePaths(stateDir).config}: ${problem}; re-enroll this device`)
  return parsed as AgentConfig
}

export async function saveConfig(stateDir: string, config: AgentConfig): Promise<void> {
  await ensurePrivateDir(stateDir)
  await writeFileAtomic(statePaths(stateDir).config, `${JSON.stringify(config, null, 2)}\n`, 0o600)
}
