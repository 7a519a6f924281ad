// The Windows service host (build/service/InterdictAgentService.cs) driven by Mono on Linux: a harness calls its
// OnStart/OnStop as the SCM would, the child is the real agent CLI against the fake server. Checks what Windows cannot
// be asked here: the agent starts with a redirected stdin, logs to the file, and closing stdin stops it gracefully.
// Skips without Mono (Debian: apt-get install mono-mcs libmono-system-serviceprocess4.0-cil, ~35 MB).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { renderTemplate, windowsCommandLine } from '../../agent/service.js'
import { enroll } from '../../agent/sync/enroll.js'
import { BANNED_NAME, FakeServer, telegramPolicy } from '../agent/fake-server.js'
import { REPO } from '../helpers.js'

const has = (cmd: string) => spawnSync(cmd, ['--version']).status === 0
const skipReason =
  process.platform !== 'linux'
    ? 'not Linux'
    : !has('mcs') || !has('mono')
      ? 'SKIPPED: mcs/mono not installed; apt-get install mono-mcs libmono-system-serviceprocess4.0-cil'
      : undefined

// Stands in for the SCM: OnStart, then OnStop when a line arrives on stdin. Mono has no RequestAdditionalTime (only
// the SCM could grant it): then the host's own stop path, StopAgent, is called as OnStop would after it.
const HARNESS = `using System;
using System.Reflection;
using System.ServiceProcess;
class Harness
{
    static int Main(string[] args)
    {
        var svc = (ServiceBase)Activator.CreateInstance(Assembly.LoadFrom(args[0]).GetType("InterdictAgentService"));
        var flags = BindingFlags.NonPublic | BindingFlags.Instance;
        typeof(ServiceBase).GetMethod("OnStart", flags).Invoke(svc, new object[] { new string[0] });
        Console.WriteLine("started");
        Console.ReadLine();
        try { typeof(ServiceBase).GetMethod("OnStop", flags).Invoke(svc, null); }
        catch (TargetInvocationException e)
        {
            if (!(e.InnerException is NotImplementedException)) throw;
            svc.GetType().GetMethod("StopAgent", flags).Invoke(svc, new object[] { false });
        }
        Console.WriteLine("stopped");
        return 0;
    }
}
`

const temps: string[] = []
const children: ChildProcess[] = []
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  for (const t of temps) await rm(t, { recursive: true, force: true })
})

async function until(cond: () => boolean, ms: number, what: () => string) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function mcs(out: string, src: string) {
  const res = spawnSync('mcs', ['-langversion:5', '-r:System.ServiceProcess.dll', `-out:${out}`, src], {
    encoding: 'utf8',
  })
  expect(res.status, res.stdout + res.stderr).toBe(0)
}

describe('Windows service host under Mono', () => {
  it.skipIf(skipReason !== undefined)(
    `runs the agent and stops it by closing its stdin (${skipReason ?? 'mcs + mono'})`,
    async () => {
      const work = await mkdtemp(join(tmpdir(), 'interdict-svchost-'))
      temps.push(work)
      const stateDir = join(work, 'state')
      const server = new FakeServer()
      await server.start()
      try {
        server.push([telegramPolicy(['report'])], 'military', 1)
        await enroll({
          server: server.url,
          secret: 's3cret',
          stateDir,
          facts: { hardwareId: 'hw-svc', hostname: 'h', os: 'linux test' },
        })
        const logFile = join(work, 'agent.log')
        const cli = join(REPO, 'bin', 'interdict-agent.js')
        const host = renderTemplate(readFileSync(join(REPO, 'build/service/InterdictAgentService.cs'), 'utf8'), {
          SERVICE_NAME: 'InterdictAgentTest',
          AGENT_EXE: process.execPath,
          // --verbose only to see the watcher's finding in the log (the service itself logs warnings).
          AGENT_ARGS: windowsCommandLine([cli, 'run', '--state-dir', stateDir, '--stop-on-stdin-eof', '--verbose']),
          LOG_FILE: logFile,
        })
        await writeFile(join(work, 'Host.cs'), host)
        await writeFile(join(work, 'Harness.cs'), HARNESS)
        mcs(join(work, 'Host.exe'), join(work, 'Host.cs'))
        mcs(join(work, 'Harness.exe'), join(work, 'Harness.cs'))
        await copyFile('/bin/sleep', join(work, BANNED_NAME))

        const { INTERDICT_LOG_LEVEL: _, ...env } = process.env
        const harness = spawn('mono', [join(work, 'Harness.exe'), join(work, 'Host.exe')], {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...env, INTERDICT_STATE_DIR: '' },
        })
        children.push(harness)
        let out = ''
        harness.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
        harness.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d))
        const exited = new Promise<number | null>((r) => harness.once('exit', (code) => r(code)))
        const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
        await until(
          () => log().includes('"agent running"'),
          20_000,
          () => `the agent; harness:\n${out}\nlog:\n${log()}`,
        )

        const banned = spawn(join(work, BANNED_NAME), ['60'], { stdio: 'ignore' })
        children.push(banned)
        await until(
          () => log().includes('"banned process started"'),
          10_000,
          () => `the finding; log:\n${log()}`,
        )
        const t0 = Date.now()
        harness.stdin?.write('\n') // the SCM's stop
        const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))])
        expect(code, out).toBe(0)
        expect(out).toContain('stopped')
        expect(Date.now() - t0).toBeLessThan(10_000)
        expect(log()).toContain('"signal":"stdin-eof"')
        const subjects = server.reports().flatMap((r) => (r.findings as { subject: string }[]) ?? [])
        expect(subjects.map((f) => f.subject)).toContain(`process:${banned.pid}`)
        const status = JSON.parse(await readFile(join(stateDir, 'status.json'), 'utf8'))
        expect(status.outbox.items).toBe(0)
        expect(Date.parse(status.updatedAt)).toBeGreaterThanOrEqual(t0)
      } finally {
        await server.stop()
      }
    },
    90_000,
  )
})
