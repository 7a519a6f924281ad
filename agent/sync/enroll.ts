// Enrollment: trade the enroll secret (which decides the class on the server) for a device id, a device token and
// the policy public key, then store them and fetch the first bundle. The device never chooses its own class.
import { createPublicKey } from 'node:crypto'
import type { AxiosResponse } from 'axios'
import { chmod, copyFile, readFile, rm } from 'node:fs/promises'
import { deviceFacts } from '../collectors/device.js'
import { AGENT_VERSION } from '../version.js'
import { pollPolicy } from './client.js'
import { type AgentConfig, loadConfig, saveConfig } from './config.js'
import { ensurePrivateDir, errorMessage } from './fsutil.js'
import { createClient, describeNetError } from './http.js'
import { statePaths } from './paths.js'
import { type OfferResult, PolicyStore } from './policy-store.js'

/** Exit codes of `enroll`: 2 usage, 3 secret or auth rejected, 4 server unreachable (or TLS failure). */
export class EnrollError extends Error {
  constructor(
    message: string,
    readonly exitCode: 2 | 3 | 4,
  ) {
    super(message)
    this.name = 'EnrollError'
  }
}

export interface EnrollOptions {
  server: string
  secret: string
  stateDir: string
  caFile?: string
  timeoutMs?: number
  /** Override device facts (tests). */
  facts?: { hardwareId: string; hostname: string; os: string }
}

export interface EnrollResult {
  config: AgentConfig
  heartbeatIntervalSec?: number
  firstPolicy: OfferResult | { status: 'none'; message: string }
}

/** Validate and normalize the server URL (pure). */
export function normalizeServer(url: string): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new EnrollError(`--server ${url} is not a URL (expected https://host[:port])`, 2)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new EnrollError(`--server must be http(s), got ${u.protocol}`, 2)
  }
  if (u.username || u.password) throw new EnrollError('--server must not carry credentials', 2)
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`
}

export async function enroll(opts: EnrollOptions): Promise<EnrollResult> {
  const server = normalizeServer(opts.server)
  if (!opts.secret) throw new EnrollError('--secret is empty', 2)
  let ca: Buffer | undefined
  if (opts.caFile) {
    try {
      ca = await readFile(opts.caFile)
    } catch (err) {
      throw new EnrollError(`cannot read --ca ${opts.caFile}: ${errorMessage(err)}`, 2)
    }
    if (!ca.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) {
      throw new EnrollError(`--ca ${opts.caFile} is not a PEM certificate`, 2)
    }
  }
  const facts = opts.facts ?? (await factsForEnroll())
  const client = createClient({ server, ...(ca ? { ca } : {}), timeoutMs: opts.timeoutMs ?? 15_000 })
  let res: AxiosResponse
  try {
    res = await client.post('/api/v1/enroll', {
      secret: opts.secret,
      hardwareId: facts.hardwareId,
      hostname: facts.hostname,
      os: facts.os,
      agentVersion: AGENT_VERSION,
    })
  } catch (err) {
    throw new EnrollError(describeNetError(err, server), 4)
  }
  const data = res.data as Record<string, unknown> | undefined
  const msg = typeof data?.message === 'string' ? data.message : `HTTP ${res.status}`
  if (res.status === 401 || res.status === 403) throw new EnrollError(`enrollment refused: ${msg}`, 3)
  if (res.status === 400 || res.status === 422) throw new EnrollError(`enrollment request invalid: ${msg}`, 2)
  if (res.status === 404) throw new EnrollError(`${server} has no enrollment endpoint (is it an Interdict server?)`, 4)
  if (res.status < 200 || res.status >= 300) throw new EnrollError(`enrollment failed: ${msg}`, 4)
  const reply = data ?? {}
  for (const k of ['deviceId', 'deviceToken', 'class', 'policyKey']) {
    if (typeof reply[k] !== 'string' || reply[k] === '') {
      throw new EnrollError(`enrollment reply lacks ${k}: not an Interdict server?`, 4)
    }
  }
  try {
    createPublicKey(reply.policyKey as string)
  } catch {
    throw new EnrollError('enrollment reply carries an invalid policy key', 4)
  }
  const paths = statePaths(opts.stateDir)
  await ensurePrivateDir(opts.stateDir)
  let caFile: string | undefined
  if (opts.caFile) {
    // A private copy: the agent must not depend on a file the installer may delete, nor one others can write.
    await copyFile(opts.caFile, paths.ca)
    await chmod(paths.ca, 0o600)
    caFile = paths.ca
  }
  const config: AgentConfig = {
    server,
    deviceId: reply.deviceId as string,
    deviceToken: reply.deviceToken as string,
    class: reply.class as string,
    policyKey: reply.policyKey as string,
    ...(caFile ? { caFile } : {}),
    hardwareId: facts.hardwareId,
    ...(typeof reply.heartbeatIntervalSec === 'number' && reply.heartbeatIntervalSec >= 5
      ? { heartbeatIntervalSec: reply.heartbeatIntervalSec }
      : {}),
    enrolledAt: new Date().toISOString(),
  }
  await resetPolicyIfKeyChanged(opts.stateDir, config)
  await saveConfig(opts.stateDir, config)
  const firstPolicy = await fetchFirstPolicy(opts.stateDir, config, ca)
  return {
    config,
    ...(typeof reply.heartbeatIntervalSec === 'number' ? { heartbeatIntervalSec: reply.heartbeatIntervalSec } : {}),
    firstPolicy,
  }
}

/**
 * Re-enrollment under another key or class (a new server, a reclassified device): the previous bundle and version
 * floor belong to the old identity and would reject every new bundle, so they go. Same key and class: kept.
 */
async function resetPolicyIfKeyChanged(stateDir: string, next: AgentConfig) {
  let prev: AgentConfig | undefined
  try {
    prev = await loadConfig(stateDir)
  } catch {}
  if (prev && prev.policyKey.trim() === next.policyKey.trim() && prev.class === next.class) return
  const paths = statePaths(stateDir)
  await rm(paths.bundle, { force: true })
  await rm(paths.policy, { force: true })
}

async function fetchFirstPolicy(
  stateDir: string,
  config: AgentConfig,
  ca?: Buffer,
): Promise<EnrollResult['firstPolicy']> {
  const client = createClient({ server: config.server, token: config.deviceToken, ...(ca ? { ca } : {}) })
  const r = await pollPolicy(client, undefined, 0)
  if (r.kind === 'error') return { status: 'none', message: r.message }
  if (r.kind !== 'bundle') return { status: 'none', message: 'the server has no policy for this class yet' }
  const store = new PolicyStore(stateDir, { publicKeyPem: config.policyKey, class: config.class })
  await store.load()
  try {
    return await store.offer(r.bundle, r.etag)
  } catch (err) {
    return { status: 'none', message: `cannot store the first bundle: ${errorMessage(err)}` }
  }
}

async function factsForEnroll(): Promise<{ hardwareId: string; hostname: string; os: string }> {
  const f = await deviceFacts()
  return {
    hardwareId: f.hardwareId ?? f.serial ?? f.hostname,
    hostname: f.hostname,
    os: `${f.os} ${f.osName} ${f.osRelease} ${f.arch}`.slice(0, 128),
  }
}
