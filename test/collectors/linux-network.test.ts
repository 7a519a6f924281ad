import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, createServer, Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  decodeProcAddress,
  formatIpv6,
  linuxConnections,
  networkCollector,
  parseLsof,
  parseNetstatAno,
  parseProcNet,
  splitHostPort,
} from '../../agent/collectors/network.js'
import type { ConnectionRow } from '../../agent/collectors/types.js'
import { fixture, makeCtx, put, tempDir } from './linux-helpers.js'

describe('/proc/net parsing', () => {
  it('decodes little-endian IPv4 and IPv6 words, and IPv4-mapped IPv6 as plain IPv4', () => {
    expect(decodeProcAddress('0100007F', true)).toBe('127.0.0.1')
    expect(decodeProcAddress('5BA79A95', true)).toBe('149.154.167.91')
    expect(decodeProcAddress('00000000000000000000000001000000', true)).toBe('::1')
    expect(decodeProcAddress('00000000000000000000000000000000', true)).toBe('::')
    expect(decodeProcAddress('0000000000000000FFFF000082386C5B', true)).toBe('91.108.56.130')
    expect(decodeProcAddress('7C06012004F0E804000000000A000000', true)).toBe('2001:67c:4e8:f004::a')
    expect(decodeProcAddress('7F000001', false)).toBe('127.0.0.1') // big-endian hosts print in order
    expect(() => decodeProcAddress('0102', true)).toThrow()
  })

  it('formats IPv6 per RFC 5952 (longest zero run compressed, single zero groups kept)', () => {
    const b = (s: string) => Buffer.from(s.replace(/:/g, ''), 'hex')
    expect(formatIpv6(b('2001:0db8:0000:0000:0001:0000:0000:0001'))).toBe('2001:db8::1:0:0:1')
    expect(formatIpv6(b('2001:0db8:0000:0001:0001:0001:0001:0001'))).toBe('2001:db8:0:1:1:1:1:1')
    expect(formatIpv6(b('fe80:0000:0000:0000:0000:0000:0000:0000'))).toBe('fe80::')
  })

  it('parses tcp, tcp6 and udp tables', () => {
    const tcp = parseProcNet(fixture('proc-net-tcp.txt'), 'tcp')
    expect(tcp).toHaveLength(3)
    expect(tcp[0]).toEqual({
      protocol: 'tcp',
      localAddress: '127.0.0.1',
      localPort: 5432,
      remoteAddress: '0.0.0.0',
      remotePort: 0,
      state: 'LISTEN',
      uid: 101,
      inode: 4542,
    })
    expect(tcp[1]).toMatchObject({
      localAddress: '10.0.0.5',
      localPort: 43210,
      remoteAddress: '149.154.167.91',
      remotePort: 443,
      state: 'ESTABLISHED',
      uid: 1000,
      inode: 88231,
    })
    expect(tcp[2]).toMatchObject({ state: 'TIME_WAIT', inode: 0 })

    const tcp6 = parseProcNet(fixture('proc-net-tcp6.txt'), 'tcp')
    expect(tcp6.map((s) => `${s.localAddress}:${s.localPort}>${s.remoteAddress}:${s.remotePort} ${s.state}`)).toEqual([
      '::1:6379>:::0 LISTEN',
      '10.0.0.5:54321>91.108.56.130:443 ESTABLISHED',
      '2a02:8109:b6c0::5:50000>2001:67c:4e8:f004::a:443 ESTABLISHED',
      'fe80::1c2d:3e4f:5a6b:7c8d:22>fe80::1:51000 ESTABLISHED',
    ])

    const udp = parseProcNet(fixture('proc-net-udp.txt'), 'udp')
    expect(udp.map((s) => [s.localPort, s.remoteAddress, s.remotePort, s.state])).toEqual([
      [5353, '0.0.0.0', 0, 'UNCONNECTED'],
      [61000, '91.108.4.1', 443, 'ESTABLISHED'],
    ])
  })

  it('reads a recorded table directory, dropping listeners and unconnected sockets unless asked', () => {
    const tmp = tempDir()
    try {
      for (const f of ['tcp', 'tcp6', 'udp']) put(join(tmp.dir, f), fixture(`proc-net-${f}.txt`)) // no udp6: skipped
      const rows = linuxConnections({ procNet: tmp.dir, resolvePids: 'never' })
      expect(rows.map((r) => `${r.protocol} ${r.remoteAddress}:${r.remotePort}`)).toEqual([
        'tcp 149.154.167.91:443',
        'tcp 127.0.0.1:5432',
        'tcp 91.108.56.130:443',
        'tcp 2001:67c:4e8:f004::a:443',
        'tcp fe80::1:51000',
        'udp 91.108.4.1:443',
      ])
      expect(linuxConnections({ procNet: tmp.dir, resolvePids: 'never', includeListening: true })).toHaveLength(9)
    } finally {
      tmp.cleanup()
    }
  })
})

describe('netstat -ano (Windows) and lsof (macOS) parsing', () => {
  it('splits host:port forms', () => {
    expect(splitHostPort('[2001:67c:4e8:f004::a]:443')).toEqual({ address: '2001:67c:4e8:f004::a', port: 443 })
    expect(splitHostPort('[fe80::1%12]:1900')).toEqual({ address: 'fe80::1', port: 1900 })
    expect(splitHostPort('*:*')).toEqual({ address: '*', port: 0 })
    expect(splitHostPort('[::ffff:1.2.3.4]:80')).toEqual({ address: '1.2.3.4', port: 80 })
  })

  it('parses netstat -ano: connections with pids, listeners and unconnected UDP dropped', () => {
    const rows = parseNetstatAno(fixture('netstat-ano.txt'))
    expect(rows.map((r) => `${r.protocol} ${r.remoteAddress}:${r.remotePort} ${r.state ?? '-'} ${r.pid}`)).toEqual([
      'tcp 149.154.167.51:443 ESTABLISHED 7420',
      'tcp 91.108.56.130:443 TIME_WAIT 0',
      'tcp 127.0.0.1:49671 ESTABLISHED 3312',
      'tcp 2001:67c:4e8:f004::a:443 ESTABLISHED 7420',
      'tcp 20.42.65.92:443 ABHÖREN 6000',
      'udp 91.108.4.1:443 - 7420',
    ])
    expect(rows[0]).toEqual({
      kind: 'connection',
      protocol: 'tcp',
      localAddress: '192.168.1.20',
      localPort: 51234,
      remoteAddress: '149.154.167.51',
      remotePort: 443,
      state: 'ESTABLISHED',
      pid: 7420,
    } satisfies ConnectionRow)
    const all = parseNetstatAno(fixture('netstat-ano.txt'), { includeListening: true })
    expect(all).toHaveLength(11)
    expect(all[0]).toMatchObject({ localAddress: '0.0.0.0', localPort: 135, state: 'LISTEN', pid: 1052 })
    expect(all.find((r) => r.localPort === 1900)).toMatchObject({
      localAddress: 'fe80::1c2d:3e4f:5a6b:7c8d',
      pid: 3300,
    })
  })

  it('parses lsof -nP output from macOS', () => {
    const rows = parseLsof(fixture('lsof-macos.txt'))
    expect(
      rows.map((r) => `${r.processName}/${r.pid} ${r.protocol} ${r.remoteAddress}:${r.remotePort} ${r.state}`),
    ).toEqual([
      'Telegram/812 tcp 149.154.167.91:443 ESTABLISHED',
      'Telegram/812 tcp 2001:67c:4e8:f004::a:443 ESTABLISHED',
      'Google C/933 udp 142.250.185.78:443 undefined',
      'rapportd/511 tcp 127.0.0.1:49153 ESTABLISHED',
      'rapportd/511 tcp 17.57.146.20:5223 CLOSE_WAIT',
    ])
    expect(rows[1]).toMatchObject({ localAddress: '2a02:8109:b6c0::5', localPort: 50211 })
    expect(parseLsof(fixture('lsof-macos.txt'), { includeListening: true })).toHaveLength(7)
  })

  it('parses lsof output recorded on Linux', () => {
    const rows = parseLsof(fixture('lsof-linux.txt'), { includeListening: true })
    expect(rows).toHaveLength(5)
    expect(rows[1]).toMatchObject({ processName: 'redis-ser', localAddress: '::1', localPort: 6379, state: 'LISTEN' })
    expect(rows[4]).toMatchObject({ pid: 17613, localPort: 40788, remoteAddress: '127.0.0.1', remotePort: 37703 })
  })
})

describe('live Linux connections', () => {
  const open: (Server | Socket)[] = []
  afterEach(async () => {
    const all = open.splice(0)
    // Sockets first: a server's close() waits for its connections to end.
    for (const s of all) if (!(s instanceof Server)) s.destroy()
    for (const s of all) if (s instanceof Server) await new Promise<void>((resolve) => s.close(() => resolve()))
  })

  async function pair(host: string): Promise<{ server: Server; client: Socket; port: number }> {
    const server = createServer((sock) => open.push(sock))
    open.push(server)
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, () => resolve()))
    const port = (server.address() as { port: number }).port
    const client = connect(port, host)
    open.push(client)
    await new Promise<void>((resolve, reject) => client.once('error', reject).once('connect', () => resolve()))
    return { server, client, port }
  }

  it('finds a real TCP connection on 127.0.0.1 and attributes it to this process', async () => {
    const { client, port } = await pair('127.0.0.1')
    const rows = linuxConnections({ resolvePids: 'always' })
    const mine = rows.find((r) => r.localPort === client.localPort && r.remotePort === port)
    const comm = readFileSync('/proc/self/comm', 'utf8').trim()
    expect(mine).toEqual({
      kind: 'connection',
      protocol: 'tcp',
      localAddress: '127.0.0.1',
      localPort: client.localPort,
      remoteAddress: '127.0.0.1',
      remotePort: port,
      state: 'ESTABLISHED',
      pid: process.pid,
      processName: comm,
    })
    // The server side of the same connection too, and no listener without includeListening.
    expect(rows.some((r) => r.localPort === port && r.remotePort === client.localPort && r.pid === process.pid)).toBe(
      true,
    )
    expect(rows.some((r) => r.localPort === port && r.state === 'LISTEN')).toBe(false)
    expect(linuxConnections({ includeListening: true }).some((r) => r.localPort === port && r.state === 'LISTEN')).toBe(
      true,
    )
  })

  it('finds a real IPv6 loopback connection', async (ctx) => {
    let p: Awaited<ReturnType<typeof pair>>
    try {
      p = await pair('::1')
    } catch {
      ctx.skip() // no IPv6 on this host
      return
    }
    const rows = linuxConnections({ resolvePids: 'always' })
    expect(rows.find((r) => r.localPort === p.client.localPort && r.remotePort === p.port)).toMatchObject({
      localAddress: '::1',
      remoteAddress: '::1',
      pid: process.pid,
    })
  })

  it('skips the fd walk for loopback-only traffic when resolving automatically, and works as a collector', async () => {
    const { client, port } = await pair('127.0.0.1')
    const never = linuxConnections({ resolvePids: 'never' })
    expect(never.find((r) => r.localPort === client.localPort && r.remotePort === port)?.pid).toBeUndefined()
    const rows = (await networkCollector.collect(makeCtx())) as ConnectionRow[]
    expect(rows.some((r) => r.localPort === client.localPort && r.remotePort === port)).toBe(true)
  })
})
