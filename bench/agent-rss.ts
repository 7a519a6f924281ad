// bench/agent-rss: memory of the agent as it runs on an endpoint: the standalone binary when one is built for this
// machine, else the bundle the binaries embed, under this Node with their V8 flags (bench/lib.ts agentCommand);
// enrolled with a real server and run as a daemon with ~500 processes on the host while it does its start-up full
// scan, a policy push (re-evaluation + full scan) and idle watching.
// Target (DESIGN §6): agent RSS under 70 MB. Reports steady RSS (median of samples after the scans) and peak (VmHWM).
// Run: npx tsx bench/agent-rss.ts [--quick]
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCtl, spawnServer } from '../test/server/process.js'
import { agentCommand, median, procMemMb, report } from './lib.js'

const QUICK = process.argv.includes('--quick')
const dir = mkdtempSync(join(tmpdir(), 'interdict-bench-rss-'))
const ADMIN = `idt_adm_bench_${randomBytes(12).toString('hex')}`
const children: ChildProcess[] = []
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

try {
  const agentCmd = await agentCommand(dir)
  process.stderr.write(`agent-rss: ${agentCmd.label}\n`)
  const server = await spawnServer(['--data-dir', join(dir, 'server')], { INTERDICT_ADMIN_TOKEN: ADMIN })
  const env = { INTERDICT_SERVER: server.url, INTERDICT_TOKEN: ADMIN }
  const ctl = async (...args: string[]) => {
    const r = await runCtl(args, env)
    if (r.code !== 0) throw new Error(`interdictctl ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  await ctl('class', 'create', 'military')
  await ctl('policy', 'push', 'policies/catalog')
  const { secret } = JSON.parse(await ctl('enroll-secret', 'create', '--class', 'military', '--json')) as {
    secret: string
  }
  const state = join(dir, 'agent')
  const enrolled = spawn(agentCmd.cmd, [
    ...agentCmd.args,
    'enroll',
    '--server',
    server.url,
    '--secret',
    secret,
    '--state-dir',
    state,
  ])
  await new Promise((r) => enrolled.once('exit', r))

  // ~500 processes on the host, all from one shell (so the bench itself stays small).
  const shell = spawn('sh', ['-c', 'for i in $(seq 450); do sleep 600 & done; wait'], {
    stdio: 'ignore',
    detached: true,
  })
  children.push(shell)
  await sleep(500)

  process.stderr.write('agent-rss: agent running (start-up scan, then a push, then idle)\n')
  // The environment the Linux service unit gives it (glibc malloc tuning).
  const unit = readFileSync('build/service/interdict-agent.service', 'utf8')
  const unitEnv = Object.fromEntries(
    [...unit.matchAll(/^Environment=(.*)$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/).map((kv) => kv.split('='))),
  )
  const agent = spawn(agentCmd.cmd, [...agentCmd.args, 'run', '--state-dir', state], {
    stdio: 'ignore',
    env: { ...process.env, ...unitEnv },
  })
  children.push(agent)
  await sleep(QUICK ? 3000 : 5000)
  // A push (the catalogue with one more policy): everything running and installed is re-evaluated, a full scan runs.
  const pushDir = join(dir, 'policies')
  cpSync('policies/catalog', pushDir, { recursive: true })
  writeFileSync(
    join(pushDir, 'extra.yaml'),
    'id: extra\ntitle: extra\napps:\n  - id: extra-app\n    name: Extra\n    match: { processNames: [extra-app-xyz] }\n' +
      'assignments:\n  military: { actions: [report, kill] }\n',
  )
  await ctl('policy', 'push', pushDir)
  const samples: number[] = []
  const anon: number[] = []
  for (let i = 0; i < (QUICK ? 5 : 15); i++) {
    await sleep(1000)
    samples.push(procMemMb(agent.pid as number, 'VmRSS'))
    anon.push(procMemMb(agent.pid as number, 'RssAnon'))
  }
  // Diagnosis (bundle only): BENCH_HEAPSNAP=1 BENCH_NODE_ARGS=--heapsnapshot-signal=SIGUSR2 writes a heap snapshot.
  if (process.env.BENCH_HEAPSNAP) {
    process.kill(agent.pid as number, 'SIGUSR2')
    await sleep(5000)
  }
  const peak = procMemMb(agent.pid as number, 'VmHWM')
  const procs = readFileSync('/proc/loadavg', 'utf8').split(' ')[3]
  const steady = median(samples)
  report({
    measure: `agent daemon RSS, steady (${procs} tasks)`,
    target: '< 70 MB',
    median: steady,
    unit: 'MB',
    // RSS = private memory + pages of the Node binary itself (shared, clean, reclaimable): show the split.
    spread: `min ${Math.min(...samples).toFixed(0)} max ${Math.max(...samples).toFixed(0)}, private ${median(anon).toFixed(0)}`,
    pass: steady < 70,
  })
  report({ measure: 'agent daemon RSS, peak (VmHWM)', target: '< 70 MB', median: peak, unit: 'MB', pass: peak < 70 })
  await server.stop()
} finally {
  for (const c of children) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGKILL')
    } catch {
      c.kill('SIGKILL')
    }
  }
  rmSync(dir, { recursive: true, force: true })
}
