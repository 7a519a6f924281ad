// Live network connections and the process owning each. Linux reads /proc/net/* (no child process); Windows parses
// `netstat -ano` and macOS `lsof -nP -iTCP -iUDP`. Every parser is pure and tested on recorded output.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { endianness } from 'node:os'
import { listPids } from './processes.js'
import type { Collector, ConnectionRow } from './types.js'

const HOST_LE = endianness() === 'LE'

export type Protocol = 'tcp' | 'udp'

/** A socket from /proc/net/{tcp,tcp6,udp,udp6}. */
export interface ProcNetSocket {
  protocol: Protocol
  localAddress: string
  localPort: number
  remoteAddress: string
  remotePort: number
  state: string
  uid: number
  inode: number
}

// include/net/tcp_states.h
const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
  '0C': 'NEW_SYN_RECV',
}

/** RFC 5952 text for 16 address bytes; IPv4-mapped addresses (::ffff:a.b.c.d) become plain IPv4 (pure). */
export function formatIpv6(b: Uint8Array): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!)
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  // The longest run (>= 2) of zero groups is written as `::`.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/**
 * Decode a /proc/net address (pure): IPv4 is one 32-bit word, IPv6 four, each printed in host byte order, i.e.
 * little-endian on x86 and arm64: `0100007F` is 127.0.0.1.
 */
export function decodeProcAddress(hex: string, littleEndian = HOST_LE): string {
  const bytes = Buffer.from(hex, 'hex')
  if (littleEndian) for (let w = 0; w < bytes.length; w += 4) bytes.subarray(w, w + 4).reverse()
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
  if (bytes.length === 16) return formatIpv6(bytes)
  throw new Error(`bad /proc/net address: ${hex}`)
}

/** Parse /proc/net/tcp|tcp6|udp|udp6 text (pure). */
export function parseProcNet(text: string, protocol: Protocol): ProcNetSocket[] {
  const out: ProcNetSocket[] = []
  const lines = text.split('\n')
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/)
    if (f.length < 10) continue
    const [local, remote, st] = [f[1]!, f[2]!, f[3]!]
    const lc = local.indexOf(':')
    const rc = remote.indexOf(':')
    if (lc < 0 || rc < 0) continue
    try {
      out.push({
        protocol,
        localAddress: decodeProcAddress(local.slice(0, lc)),
        localPort: Number.parseInt(local.slice(lc + 1), 16),
        remoteAddress: decodeProcAddress(remote.slice(0, rc)),
        remotePort: Number.parseInt(remote.slice(rc + 1), 16),
        // UDP reuses the TCP codes: 01 is a connected socket, 07 an unconnected one.
        state: protocol === 'tcp' ? (TCP_STATES[st] ?? st) : st === '01' ? 'ESTABLISHED' : 'UNCONNECTED',
        uid: Number(f[7]),
        inode: Number(f[9]),
      })
    } catch {
      // a malformed line: skip it rather than lose the table
    }
  }
  return out
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1'
}

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '*' || address === ''
}

/** A socket that talks to a peer (not a listener, not an unconnected UDP socket). */
export function isConnected(c: { remoteAddress: string; remotePort: number; state?: string }): boolean {
  return c.remotePort !== 0 && !isUnspecified(c.remoteAddress) && c.state !== 'LISTEN'
}

/** Socket inode -> pid for the wanted inodes, by reading /proc/PID/fd links; stops once all are found. */
export function socketOwners(wanted: ReadonlySet<number>): Map<number, number> {
  const owners = new Map<number, number>()
  if (wanted.size === 0) return owners
  for (const pid of listPids()) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue // exited, or not ours to read
    }
    for (const fd of fds) {
      let link: string
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      // `socket:[12345]`
      if (link.charCodeAt(0) !== 115 || !link.startsWith('socket:[')) continue
      const inode = Number(link.slice(8, -1))
      if (wanted.has(inode) && !owners.has(inode)) owners.set(inode, pid)
    }
    if (owners.size === wanted.size) break
  }
  return owners
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd()
  } catch {
    return undefined
  }
}

export interface LinuxConnectionOptions {
  /**
   * When to map sockets to pids (a walk over every process's fds): `auto` only when some connection has a
   * non-loopback peer, since only those can match a network rule; `always` e.g. for tests; `never`.
   */
  resolvePids?: 'auto' | 'always' | 'never'
  /** Also return listening and unconnected sockets. */
  includeListening?: boolean
  /** Directory holding tcp, tcp6, udp, udp6; default /proc/net (i.e. this process's network namespace). */
  procNet?: string
}

export function linuxConnections(opts: LinuxConnectionOptions = {}): ConnectionRow[] {
  const dir = opts.procNet ?? '/proc/net'
  const sockets: ProcNetSocket[] = []
  for (const [file, proto] of [
    ['tcp', 'tcp'],
    ['tcp6', 'tcp'],
    ['udp', 'udp'],
    ['udp6', 'udp'],
  ] as const) {
    let text: string
    try {
      text = readFileSync(`${dir}/${file}`, 'utf8')
    } catch {
      continue // IPv6 disabled, or no UDP table in this namespace
    }
    for (const s of parseProcNet(text, proto)) if (opts.includeListening || isConnected(s)) sockets.push(s)
  }
  const mode = opts.resolvePids ?? 'auto'
  const resolve =
    mode === 'always' || (mode === 'auto' && sockets.some((s) => isConnected(s) && !isLoopback(s.remoteAddress)))
  const owners = resolve ? socketOwners(new Set(sockets.filter((s) => s.inode > 0).map((s) => s.inode))) : new Map()
  const names = new Map<number, string | undefined>()
  return sockets.map((s) => {
    const row: ConnectionRow = {
      kind: 'connection',
      protocol: s.protocol,
      localAddress: s.localAddress,
      localPort: s.localPort,
      remoteAddress: s.remoteAddress,
      remotePort: s.remotePort,
      state: s.state,
    }
    const pid = owners.get(s.inode)
    if (pid !== undefined) {
      row.pid = pid
      if (!names.has(pid)) names.set(pid, comm(pid))
      const name = names.get(pid)
      if (name) row.processName = name
    }
    return row
  })
}

/** Split `host:port`, `[v6]:port` or `*:*` (pure). */
export function splitHostPort(text: string): { address: string; port: number } {
  let host: string
  let port: string
  if (text.startsWith('[')) {
    const end = text.indexOf(']')
    host = text.slice(1, end)
    port = text.slice(end + 2)
  } else {
    const i = text.lastIndexOf(':')
    host = i < 0 ? text : text.slice(0, i)
    port = i < 0 ? '' : text.slice(i + 1)
  }
  const pct = host.indexOf('%') // drop an IPv6 zone id (fe80::1%12)
  if (pct >= 0) host = host.slice(0, pct)
  if (host.startsWith('::ffff:') && host.includes('.')) host = host.slice(7)
  const n = Number(port)
  return { address: host, port: port === '*' || !Number.isFinite(n) ? 0 : n }
}

/**
 * Parse Windows `netstat -ano` (pure). Columns are positional (Proto, Local, Foreign, [State], PID) because the
 * state words are localized; UDP rows have no state.
 */
export function parseNetstatAno(text: string, opts: { includeListening?: boolean } = {}): ConnectionRow[] {
  const out: ConnectionRow[] = []
  for (const line of text.split(/\r?\n/)) {
    const f = line.trim().split(/\s+/)
    const proto = f[0]?.toUpperCase()
    if ((proto !== 'TCP' && proto !== 'UDP') || f.length < 4) continue
    const local = splitHostPort(f[1]!)
    const remote = splitHostPort(f[2]!)
    const pid = Number(f[f.length - 1])
    const row: ConnectionRow = {
      kind: 'connection',
      protocol: proto === 'TCP' ? 'tcp' : 'udp',
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
    }
    if (proto === 'TCP' && f.length >= 5) {
      const state = f[3]!
      row.state = state === 'LISTENING' ? 'LISTEN' : state
    }
    if (Number.isInteger(pid)) row.pid = pid
    if (opts.includeListening || isConnected(row)) out.push(row)
  }
  return out
}

const LSOF_LINE = /^(\S+)\s+(\d+)\s+.*?\s(TCP|UDP)\s+(\S+?)(?:\s+\(([A-Z_0-9]+)\))?\s*$/

/** Parse `lsof -nP -iTCP -iUDP` output (pure; macOS, and Linux prints the same format). */
export function parseLsof(text: string, opts: { includeListening?: boolean } = {}): ConnectionRow[] {
  const out: ConnectionRow[] = []
  for (const line of text.split(/\r?\n/)) {
    const m = LSOF_LINE.exec(line)
    if (!m) continue
    const [, command, pid, proto, name, state] = m
    const [localText, remoteText] = name!.split('->')
    const local = splitHostPort(localText!)
    const remote = remoteText ? splitHostPort(remoteText) : { address: '', port: 0 }
    const row: ConnectionRow = {
      kind: 'connection',
      protocol: proto === 'TCP' ? 'tcp' : 'udp',
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
      pid: Number(pid),
      // lsof escapes unprintable bytes and spaces in command names as \xNN.
      processName: command!.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) =>
        String.fromCharCode(Number.parseInt(h, 16)),
      ),
    }
    if (state) row.state = state
    if (opts.includeListening || isConnected(row)) out.push(row)
  }
  return out
}

function run(cmd: string, args: string[], okCodes: number[] = [0]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30_000, maxBuffer: 32 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      const code = err && typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 0
      if (err && !(okCodes.includes(code) && !(err as { killed?: boolean }).killed)) {
        reject(new Error(`network: \`${cmd} ${args.join(' ')}\` failed: ${stderr.trim() || err.message}`))
      } else resolve(stdout)
    })
  })
}

export const networkCollector: Collector = {
  name: 'network',
  os: ['linux', 'darwin', 'win32'],
  async collect(ctx) {
    if (ctx.os === 'linux') return linuxConnections()
    if (ctx.os === 'win32') return parseNetstatAno(await run('netstat', ['-ano']))
    // lsof exits 1 when it finds no socket at all.
    return parseLsof(await run('lsof', ['-nP', '-iTCP', '-iUDP'], [0, 1]))
  },
}
