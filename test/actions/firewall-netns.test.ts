// block-network for real: nftables rules applied inside a throwaway network namespace (never the host's firewall),
// with a TCP server in that namespace on an address inside a banned CIDR and one outside it. Connections to the banned
// address stop when the block is applied and work again when the policy no longer asks for it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyNetworkBlock } from '../../agent/actions/block-network.js'
import { runCommand } from '../../agent/actions/run.js'
import type { CommandRunner } from '../../agent/actions/types.js'

const ok = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0
const skipReason =
  process.platform !== 'linux'
    ? 'not Linux'
    : process.getuid?.() !== 0
      ? 'not root'
      : !ok('nft', ['--version'])
        ? 'nft not installed (Debian package nftables)'
        : !ok('unshare', ['--net', 'true'])
          ? 'cannot create a network namespace'
          : undefined

const BANNED = '149.154.167.99' // inside Telegram's 149.154.160.0/20
const ALLOWED = '198.51.100.5' // TEST-NET-2, not banned
const PORT = 8443

describe.skipIf(skipReason !== undefined)(
  `block-network in a network namespace (${skipReason ?? 'root + nft'})`,
  () => {
    let holder: ChildProcess
    let server: ChildProcess
    let inNs: (cmd: string, args: string[]) => string[]
    let runner: CommandRunner

    // Whether a TCP connection from inside the namespace gets the server's greeting within 1 s.
    const connects = (host: string) =>
      spawnSync(
        'nsenter',
        inNs(process.execPath, [
          '-e',
          `const s=require('net').connect(${PORT},'${host}');s.setTimeout(1000,()=>process.exit(1));` +
            `s.on('data',()=>process.exit(0));s.on('error',()=>process.exit(1))`,
        ]),
      ).status === 0

    beforeAll(async () => {
      // The namespace lives as long as this process holding it.
      holder = spawn('unshare', ['--net', 'sleep', '600'], { stdio: 'ignore' })
      await new Promise((r) => setTimeout(r, 200))
      const ns = `--net=/proc/${holder.pid}/ns/net`
      inNs = (cmd, args) => [ns, '--', cmd, ...args]
      runner = (cmd, args, opts) => runCommand('nsenter', inNs(cmd, [...args]), opts)
      for (const args of [
        ['link', 'set', 'lo', 'up'],
        ['addr', 'add', `${BANNED}/32`, 'dev', 'lo'],
        ['addr', 'add', `${ALLOWED}/32`, 'dev', 'lo'],
      ]) {
        expect(spawnSync('nsenter', inNs('ip', args)).status).toBe(0)
      }
      server = spawn(
        'nsenter',
        inNs(process.execPath, ['-e', `require('net').createServer(s=>s.end('hi')).listen(${PORT},'0.0.0.0')`]),
        { stdio: 'ignore' },
      )
      const end = Date.now() + 5000
      while (!connects(ALLOWED) && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
    })
    afterAll(() => {
      server?.kill('SIGKILL')
      holder?.kill('SIGKILL')
    })

    it('drops traffic to a banned CIDR, leaves the rest, and removes the block when the policy drops it', async () => {
      expect(connects(BANNED)).toBe(true)
      expect(connects(ALLOWED)).toBe(true)

      const opts = { runner, kind: 'nftables' as const, hosts: false, os: 'linux' as const }
      const request = { domains: [], groups: [{ app: 'telegram', cidrs: ['149.154.160.0/20', '2001:67c:4e8::/48'] }] }
      const on = await applyNetworkBlock(request, opts)
      expect(on.errors).toEqual([])
      const listed = spawnSync('nsenter', inNs('nft', ['list', 'table', 'inet', 'interdict']), { encoding: 'utf8' })
      expect(listed.stdout).toContain('149.154.160.0/20')
      expect(connects(BANNED)).toBe(false)
      expect(connects(ALLOWED)).toBe(true)

      // Applying the same state again is harmless (the table is replaced atomically).
      expect((await applyNetworkBlock(request, opts)).ok).toBe(true)
      expect(connects(BANNED)).toBe(false)

      const off = await applyNetworkBlock({ domains: [], groups: [] }, opts)
      expect(off.errors).toEqual([])
      const tables = spawnSync('nsenter', inNs('nft', ['list', 'tables']), { encoding: 'utf8' })
      expect(tables.stdout).not.toContain('interdict')
      expect(connects(BANNED)).toBe(true)
    })
  },
)
