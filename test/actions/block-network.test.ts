import { spawnSync } from 'node:child_process'
import { readFileSync, statSync, writeFileSync, chmodSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  applyFirewall,
  applyHostsBlock,
  applyNetworkBlock,
  commandsText,
  iptablesCommands,
  netshCommands,
  nftablesScript,
  pfAnchorRules,
  pfCommands,
  renderHosts,
} from '../../agent/actions/block-network.js'
import type { CommandRunner } from '../../agent/actions/types.js'
import { tempDir } from '../helpers.js'

const canCheckNft =
  process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0
const FIX = new URL('../fixtures/actions/', import.meta.url).pathname
const fixture = (name: string) => readFileSync(join(FIX, name), 'utf8')

const ORIGINAL = '127.0.0.1 localhost\n::1 localhost ip6-localhost\n\n# keep me\n10.0.0.5 printer.lan\n'
const GROUPS = [
  { app: 'telegram', cidrs: ['149.154.160.0/20', '91.108.4.0/22', '2001:67c:4e8::/48', '91.108.4.0/22'] },
  { app: 'tiktok', cidrs: ['203.0.113.7', 'not-a-cidr', '2001:db8::1'] },
]

describe('block-network: hosts file', () => {
  let dir: ReturnType<typeof tempDir>
  let hosts: string
  beforeEach(() => {
    dir = tempDir('interdict-hosts-')
    hosts = join(dir.path, 'hosts')
    writeFileSync(hosts, ORIGINAL)
    chmodSync(hosts, 0o640)
  })
  afterEach(() => dir.cleanup())

  it('applies a marked block, re-applies idempotently, and removes it', async () => {
    const first = await applyHostsBlock(['Telegram.org', 'web.telegram.org.', 'bad domain!'], hosts)
    expect(first.changed).toBe(true)
    const text = readFileSync(hosts, 'utf8')
    expect(text.startsWith(ORIGINAL)).toBe(true)
    expect(text).toContain('# BEGIN interdict\n')
    expect(text).toContain('# END interdict\n')
    for (const n of ['telegram.org', 'www.telegram.org', 'web.telegram.org', 'www.web.telegram.org']) {
      expect(text).toContain(`0.0.0.0 ${n}\n`)
      expect(text).toContain(`:: ${n}\n`)
    }
    expect(text).not.toContain('bad')
    expect(statSync(hosts).mode & 0o777).toBe(0o640)

    const again = await applyHostsBlock(['web.telegram.org', 'telegram.org'], hosts)
    expect(again.changed).toBe(false)
    expect(readFileSync(hosts, 'utf8')).toBe(text)
    expect(text.match(/# BEGIN interdict/g)).toHaveLength(1)

    const removed = await applyHostsBlock([], hosts)
    expect(removed.changed).toBe(true)
    expect(readFileSync(hosts, 'utf8')).toBe(ORIGINAL)
    expect(statSync(hosts).mode & 0o777).toBe(0o640)
    // No temp files left behind.
    expect(readdirSync(dir.path)).toEqual(['hosts'])
  })

  it('renders around an existing block and keeps CRLF files CRLF', () => {
    const crlf = ORIGINAL.replace(/\n/g, '\r\n')
    const out = renderHosts(crlf, ['example.com'])
    expect(out.startsWith(crlf)).toBe(true)
    expect(out).toContain('0.0.0.0 www.example.com\r\n')
    expect(renderHosts(out, [])).toBe(crlf)
    expect(renderHosts(renderHosts(out, ['other.net']), ['example.com'])).toBe(out)
  })

  it('applies the whole state through applyNetworkBlock with a recording runner (no real firewall)', async () => {
    const calls: { cmd: string; args: readonly string[]; input?: string }[] = []
    const runner: CommandRunner = async (cmd, args, opts) => {
      calls.push({ cmd, args, input: opts?.input })
      return { code: 0, signal: null, stdout: '', stderr: '', timedOut: false }
    }
    const r = await applyNetworkBlock(
      { domains: ['telegram.org'], groups: GROUPS },
      { hostsPath: hosts, runner, os: 'linux', kind: 'nftables' },
    )
    expect(r).toMatchObject({ ok: true, changed: true, firewall: 'nftables', hostsPath: hosts })
    expect(calls).toEqual([{ cmd: 'nft', args: ['-f', '-'], input: fixture('nftables.nft') }])
    const off = await applyNetworkBlock(
      { domains: [], groups: [] },
      { hostsPath: hosts, runner, os: 'linux', kind: 'nftables' },
    )
    expect(off.ok).toBe(true)
    expect(calls.at(-1)?.input).toBe(fixture('nftables-remove.nft'))
    expect(readFileSync(hosts, 'utf8')).toBe(ORIGINAL)
  })

  it('reports a failing firewall command', async () => {
    const runner: CommandRunner = async () => ({ code: 1, signal: null, stdout: '', stderr: 'nope', timedOut: false })
    const r = await applyFirewall(GROUPS, { runner, os: 'linux', kind: 'nftables' })
    expect(r.error).toMatch(/nft -f - exited 1/)
  })
})

describe('block-network: firewall rule text vs fixtures', () => {
  it('nftables', () => {
    const cidrs = GROUPS.flatMap((g) => g.cidrs)
    expect(nftablesScript(cidrs)).toBe(fixture('nftables.nft'))
    expect(nftablesScript([])).toBe(fixture('nftables-remove.nft'))
  })
  it.skipIf(!canCheckNft)('nftables fixtures pass `nft -c` (syntax check only, nothing applied)', () => {
    for (const f of ['nftables.nft', 'nftables-remove.nft']) {
      const r = spawnSync('nft', ['-c', '-f', join(FIX, f)], { encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
    }
  })
  it('iptables', () => {
    expect(`${commandsText(iptablesCommands(GROUPS.flatMap((g) => g.cidrs)))}\n`).toBe(fixture('iptables.txt'))
  })
  it('netsh', () => {
    expect(`${commandsText(netshCommands(GROUPS, ['old-app', 'telegram']))}\n`).toBe(fixture('netsh.txt'))
  })
  it('pf', () => {
    expect(pfAnchorRules(GROUPS.flatMap((g) => g.cidrs))).toBe(fixture('pf-anchor.conf'))
    expect(pfCommands([])).toEqual([{ cmd: 'pfctl', args: ['-a', 'interdict', '-F', 'all'], mayFail: true }])
  })
})
