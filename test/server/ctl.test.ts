// interdictctl against a real server: every command, human and JSON output, and the exit codes scripts rely on.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ADMIN,
  call,
  enrollDevices,
  finding,
  makeDatabase,
  POLICY_2,
  POLICY_YAML,
  report,
  startServer,
  type TestServer,
} from './helpers.js'
import { runCtl } from './process.js'

describe('interdictctl', () => {
  let db: Awaited<ReturnType<typeof makeDatabase>>
  let srv: TestServer
  let env: Record<string, string>
  beforeAll(async () => {
    db = await makeDatabase('sqlite')
    srv = await startServer(db)
    env = { INTERDICT_SERVER: srv.url, INTERDICT_TOKEN: ADMIN }
  })
  afterAll(async () => {
    await srv?.close()
    await db?.drop()
  })

  it('creates classes and enroll secrets', async () => {
    const c = await runCtl(['class', 'create', 'military', '--description', 'armed forces'], env)
    expect(c.code).toBe(0)
    expect(c.stdout).toContain('created class military')
    const l = await runCtl(['class', 'list', '--json'], env)
    expect(JSON.parse(l.stdout).classes.map((x: { name: string }) => x.name)).toEqual(['military'])
    const s = await runCtl(['enroll-secret', 'create', '--class', 'military'], env)
    expect(s.code).toBe(0)
    const secret = /idt_enr_\S+/.exec(s.stdout)![0]
    const e = await call(srv.url, 'POST', '/api/v1/enroll', {
      body: { secret, hardwareId: 'ctl-1', hostname: 'laptop-1', os: 'linux', agentVersion: '1' },
    })
    expect(e.status).toBe(200)
  })

  it('pushes a directory with --dry-run (diff per class) and for real; lists policy', async () => {
    const dir = join(db.dataDir, 'policies')
    mkdirSync(dir)
    writeFileSync(join(dir, 'chat.yaml'), POLICY_YAML)
    writeFileSync(join(dir, 'other.json'), JSON.stringify(POLICY_2))
    const dry = await runCtl(['policy', 'push', dir, '--dry-run'], env)
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain('dry run')
    expect(dry.stdout).toMatch(/class military: v1 -> v2\n {2}\+ ban-chatapp\/chatapp\n {2}\+ ban-other\/otherapp/)
    const push = await runCtl(['policy', 'push', dir], env)
    expect(push.code).toBe(0)
    expect(push.stdout).toContain('pushed policy set v1')
    const list = await runCtl(['policy', 'list'], env)
    expect(list.stdout).toMatch(/military\s+2/)
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'id: bad\ntitle: x\napps: []\nassignments: {}\n')
    const rej = await runCtl(['policy', 'push', bad], env)
    expect(rej.code).toBe(1)
    expect(rej.stderr).toContain('bad.yaml')
  })

  it('shows devices, compliance, findings (csv) and rollout', async () => {
    const { devices } = await enrollDevices(srv.url, 'military', 2, 'ctl')
    await call(srv.url, 'POST', '/api/v1/reports', {
      token: devices[0]!.deviceToken,
      body: report({ findings: [finding('a')] }),
    })
    const d = await runCtl(['devices', '--class', 'military'], env)
    expect(d.code).toBe(0)
    expect(d.stdout).toMatch(/^ID\s+HOSTNAME\s+CLASS\s+STATUS/)
    expect(d.stdout).toContain('noncompliant')
    const c = await runCtl(['compliance', '--json'], env)
    expect(JSON.parse(c.stdout).totals.noncompliant).toBe(1)
    const f = await runCtl(['findings', '--app', 'chatapp', '--since', '24h', '--format', 'csv'], env)
    expect(f.code).toBe(0)
    expect(f.stdout.split('\r\n')[0]).toBe(
      'scannedAt,deviceId,hostname,class,appId,appName,policy,signal,matched,subject,status,actions,reportId',
    )
    expect(f.stdout.split('\r\n').length).toBe(3)
    const r = await runCtl(['rollout'], env)
    expect(r.stdout).toMatch(/military\s+2/)
    const rev = await runCtl(['device', 'revoke', devices[1]!.deviceId], env)
    expect(rev.code).toBe(0)
    const gone = await runCtl(['device', 'revoke', 'dev_nope'], env)
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain('no device')
  })

  it('creates tokens; auditors cannot write (exit 3); exit codes for usage and unreachable', async () => {
    const t = await runCtl(['token', 'create', '--role', 'auditor', '--json'], env)
    expect(t.code).toBe(0)
    const auditor = JSON.parse(t.stdout).token
    const ro = await runCtl(['--token', auditor, 'class', 'create', 'x'], env)
    expect(ro.code).toBe(3)
    const ok = await runCtl(['--token', auditor, 'class', 'list'], env)
    expect(ok.code).toBe(0)
    expect((await runCtl(['--token', 'idt_adm_wrong', 'devices'], env)).code).toBe(3)
    expect((await runCtl(['devices', '--status', 'sleepy'], env)).code).toBe(2)
    expect((await runCtl(['frobnicate'], env)).code).toBe(2)
    expect((await runCtl(['devices'], { INTERDICT_TOKEN: ADMIN })).code).toBe(2)
    const down = await runCtl(['--server', 'http://127.0.0.1:1', 'devices'], env)
    expect(down.code).toBe(4)
    expect(down.stderr).toContain('cannot reach')
    const help = await runCtl(['findings', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--format')
  })
})
