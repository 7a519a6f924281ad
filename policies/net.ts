// IP and CIDR helpers for network rules (pure; IPv4, IPv6 and IPv4-mapped IPv6).
import { isIP } from 'node:net'

export interface Cidr {
  family: 4 | 6
  base: bigint
  prefix: number
  text: string
}

function v4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)
}

function v6ToBigInt(ip: string): bigint {
  let text = ip
  // Embedded dotted quad (::ffff:1.2.3.4) becomes two hextets.
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/)
  if (dotted?.[1]) {
    const v = v4ToBigInt(dotted[1])
    text = `${text.slice(0, -dotted[1].length)}${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail !== '' ? tail.split(':') : []
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0')
  return [...h, ...fill, ...t].reduce((acc, part) => (acc << 16n) | BigInt(Number.parseInt(part || '0', 16)), 0n)
}

/** Parse an address to (family, value); IPv4-mapped IPv6 (::ffff:a.b.c.d) is treated as the IPv4 address. */
export function parseIp(ip: string): { family: 4 | 6; value: bigint } | undefined {
  const bare = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  const fam = isIP(bare)
  if (fam === 4) return { family: 4, value: v4ToBigInt(bare) }
  if (fam === 6) {
    const value = v6ToBigInt(bare)
    if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn }
    return { family: 6, value }
  }
  return undefined
}

export function parseCidr(text: string): Cidr | undefined {
  const m = text.trim().match(/^([^/]+)\/(\d{1,3})$/)
  if (!m?.[1] || !m[2]) return undefined
  const ip = parseIp(m[1])
  const prefix = Number(m[2])
  if (!ip) return undefined
  const bits = ip.family === 4 ? 32 : 128
  if (prefix > bits) return undefined
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix)
  return { family: ip.family, base: ip.value & mask, prefix, text: text.trim() }
}

export function inCidr(ip: { family: 4 | 6; value: bigint }, cidr: Cidr): boolean {
  if (ip.family !== cidr.family) return false
  const bits = cidr.family === 4 ? 32 : 128
  const shift = BigInt(bits - cidr.prefix)
  return ip.value >> shift === cidr.base >> shift
}
