import { describe, expect, it } from 'vitest'
import { loadPolicies, parsePolicy, PolicyError } from '../../policies/load.js'

const CATALOG = new URL('../../policies/catalog', import.meta.url).pathname

function issuesOf(text: string) {
  try {
    parsePolicy(text, 'p.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError)
    return (err as PolicyError).issues
  }
  throw new Error('expected the policy to be rejected')
}

const base = (match: string, extra = '') => `id: t
title: Test
apps:
  - id: app
    name: App
    match:
${match}
assignments:
  standard: { actions: [report] }
${extra}`

describe('policy loading', () => {
  it('loads the shipped catalogue', async () => {
    const policies = await loadPolicies(CATALOG)
    expect(policies.map((p) => p.id).sort()).toEqual(['ban-deepseek', 'ban-kaspersky', 'ban-telegram', 'ban-tiktok'])
    const tg = policies.find((p) => p.id === 'ban-telegram')!
    expect(Object.keys(tg.assignments)).toEqual(
      expect.arrayContaining(['military', 'government', 'defence', 'critical-infrastructure', 'standard']),
    )
    expect(tg.assignments.standard?.actions).toEqual(['report'])
    expect(tg.assignments.military?.actions).toContain('kill')
  })

  it('names file, line and field for a wrong type', () => {
    const issues = issuesOf(base('      processNames: [telegram-desktop]\n      sha256: 42'))
    expect(issues[0]).toMatchObject({ file: 'p.yaml', line: 8, path: '/apps/0/match/sha256' })
    expect(issues[0]!.message).toMatch(/array/)
  })

  it('points at an unknown field by its key', () => {
    const issues = issuesOf(base('      processNames: [telegram-desktop]\n      procesNames: [x]'))
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatchObject({ line: 8, path: '/apps/0/match/procesNames' })
    expect(issues[0]!.message).toContain('unknown field "procesNames"')
  })

  it('reports a missing required field at its parent', () => {
    const issues = issuesOf(
      'id: t\ntitle: T\napps:\n  - id: a\n    match: { processNames: [abcdef] }\nassignments: {}\n',
    )
    expect(issues.some((i) => i.path === '/apps/0' && i.message.includes('"name"') && i.line === 4)).toBe(true)
  })

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('id: t\ntitle: [unclosed\napps: []\n')
    expect(issues[0]!.message).toMatch(/YAML syntax/)
    expect(issues[0]!.line).toBeGreaterThanOrEqual(2)
  })

  it('rejects duplicate keys and an unknown action', () => {
    expect(issuesOf('id: t\nid: u\n')[0]!.message).toMatch(/YAML syntax/)
    const issues = issuesOf(base('      processNames: [telegram-desktop]').replace('[report]', '[report, explode]'))
    expect(issues[0]!.path).toMatch(/^\/assignments\/standard\/actions\/1/)
  })

  it.each([
    ['empty process name', "      processNames: ['']", '/apps/0/match/processNames/0'],
    ['wildcard process name', "      processNames: ['tele*']", '/apps/0/match/processNames/0'],
    ['substring-ish short name', '      processNames: [tg]', '/apps/0/match/processNames/0'],
    ['OS process name', '      processNames: [bash]', '/apps/0/match/processNames/0'],
    ['root path', "      paths: ['/']", '/apps/0/match/paths/0'],
    ['all of /usr', "      paths: ['/usr/**']", '/apps/0/match/paths/0'],
    ['artifact of a whole home', "      artifacts: ['~']", '/apps/0/match/artifacts/0'],
    ['CIDR wider than /8', '      network: { cidrs: [10.0.0.0/7] }', '/apps/0/match/network/cidrs/0'],
    ['loopback CIDR', '      network: { cidrs: [127.0.0.0/16] }', '/apps/0/match/network/cidrs/0'],
    ['IPv6 /8', "      network: { cidrs: ['2000::/8'] }", '/apps/0/match/network/cidrs/0'],
    ['not a CIDR', '      network: { cidrs: [telegram] }', '/apps/0/match/network/cidrs/0'],
    ['wildcard domain', "      network: { domains: ['*.telegram.org'] }", '/apps/0/match/network/domains/0'],
    ['top-level domain', '      network: { domains: [org] }', '/apps/0/match/network/domains/0'],
    ['short marker', '      binaryMarkers: [abc]', '/apps/0/match/binaryMarkers/0'],
    [
      'hash of the empty file',
      `      sha256: [${'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'}]`,
      '/apps/0/match/sha256/0',
    ],
    [
      'OS vendor as publisher',
      '      windows: { publishers: [Microsoft Corporation] }',
      '/apps/0/match/windows/publishers/0',
    ],
    ['no signal at all', '      {}', '/apps/0/match'],
  ])('rejects an over-broad rule: %s', (_name, match, path) => {
    const issues = issuesOf(base(match))
    expect(issues.map((i) => i.path)).toContain(path)
    expect(issues.find((i) => i.path === path)!.line).toBeGreaterThan(0)
  })

  it('rejects an exemption without a device or class', () => {
    const issues = issuesOf(
      base(
        '      processNames: [telegram-desktop]',
        'exemptions:\n  - { reason: r, approvedBy: ciso, expiresAt: "2030-01-01T00:00:00Z" }',
      ),
    )
    expect(issues[0]).toMatchObject({ path: '/exemptions/0', line: 11 })
  })

  it('accepts a narrow policy', () => {
    const p = parsePolicy(
      base("      processNames: [telegram-desktop]\n      paths: ['~/Downloads/Telegram/Telegram']"),
      'ok.yaml',
    )
    expect(p.apps[0]!.match.processNames).toEqual(['telegram-desktop'])
  })
})
