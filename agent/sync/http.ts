// The agent's HTTP client: axios with hard timeouts, the device token, and (with a CA file) a TLS trust store of
// exactly that CA, so a certificate from any other authority, public or corporate MITM, is refused.
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import axios, { type AxiosInstance } from 'axios'
import { AGENT_VERSION } from '../version.js'

export interface ClientOptions {
  server: string
  token?: string
  /** PEM CA certificate(s); replaces the system roots. */
  ca?: string | Buffer
  caFile?: string
  /** Default request timeout (long-polls pass their own). */
  timeoutMs?: number
}

export function createClient(opts: ClientOptions): AxiosInstance {
  const ca = opts.ca ?? (opts.caFile ? readFileSync(opts.caFile) : undefined)
  // keepAlive: the long-poll and report posts reuse one connection instead of a TLS handshake each time.
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 4, ...(ca ? { ca } : {}) })
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  return axios.create({
    baseURL: opts.server.replace(/\/+$/, ''),
    timeout: opts.timeoutMs ?? 15_000,
    httpAgent,
    httpsAgent,
    // Never follow a redirect to another origin with the device token; the protocol has none.
    maxRedirects: 0,
    // Callers branch on the status themselves.
    validateStatus: () => true,
    // A proxy from the environment would see the token in clear when the server is http; the agent talks direct.
    proxy: false,
    maxContentLength: 64 * 1024 * 1024,
    headers: {
      'user-agent': `interdict-agent/${AGENT_VERSION}`,
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    },
  })
}

export type NetErrorKind = 'unreachable' | 'timeout' | 'tls' | 'other'

/** Classify a transport error (no HTTP status) for messages and exit codes. */
export function netErrorKind(err: unknown): NetErrorKind {
  const code = (err as { code?: string }).code ?? ''
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'].includes(code)) {
    return 'unreachable'
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED') return 'timeout'
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code)) return 'tls'
  return 'other'
}

export function describeNetError(err: unknown, server: string): string {
  const e = err as { code?: string; message?: string }
  switch (netErrorKind(err)) {
    case 'unreachable':
      return `server ${server} is unreachable (${e.code})`
    case 'timeout':
      return `server ${server} did not answer in time`
    case 'tls':
      return `TLS verification of ${server} failed (${e.code}): the certificate does not chain to the pinned CA`
    default:
      return `request to ${server} failed: ${e.message ?? String(err)}`
  }
}
