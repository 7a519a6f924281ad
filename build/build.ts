// `npm run build [-- --target T[,T]] [--only agent|server|ctl] [--offline] [--tarballs DIR] [--out DIR]`
// Standalone executables: esbuild bundle (CJS) -> Node SEA blob (made by the target's exact Node version) -> postject
// into the official Node binary from the npm registry (pinned in build/node-binaries.lock.json). See build/README.md.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { bundle, ROOT } from './bundle.js'
import { fetchHint, MissingBinaryError, nodeBinary, sha256File } from './node-binaries.js'
import { AGENT_EXEC_ARGV, makeBlob, makeExecutable, type SeaConfig, seaConfigPath } from './sea.js'
import { serverDefines, serverPlugins, serverSeaAssets } from './server-native.js'
import {
  type App,
  hostTarget,
  isWindows,
  type NodeLock,
  outputName,
  parseArgs,
  plan,
  readLock,
  type Target,
} from './targets.js'

const USAGE = `usage: npm run build -- [--target T[,T]] [--only agent|server|ctl] [--offline] [--tarballs DIR] [--out DIR]
targets: linux-x64 linux-arm64 win-x64 win-arm64 darwin-x64 darwin-arm64 (default: all; server and ctl: linux-x64)`

const t0 = Date.now()
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`.padStart(6)
const log = (msg: string) => process.stdout.write(`[${elapsed()}] ${msg}\n`)

/** The Node that makes SEA blobs: this one if it is the pinned version, else the pinned build for this host. */
async function blobNode(lock: NodeLock, cacheDir: string, offline: boolean, tarballs?: string): Promise<string> {
  if (process.version === `v${lock.version}`) return process.execPath
  const host = hostTarget()
  if (!host) throw new Error(`no pinned Node for this host (${process.platform}-${process.arch}) to make SEA blobs`)
  log(`blob maker: Node ${lock.version} ${host} (this Node is ${process.version}; the blob must match the target)`)
  return nodeBinary(lock, host, { cacheDir, offline, tarballs, log: (m) => log(`  ${m}`) })
}

function fastlistAsset(target: Target): Record<string, string> {
  // ps-list's fastlist lists Windows processes; x64 only (ARM64 uses agent/collectors/windows-processes.ts fallbacks).
  if (target !== 'win-x64') return {}
  return { 'fastlist.exe': join(ROOT, 'node_modules/ps-list/vendor/fastlist-0.3.0-x64.exe') }
}

function human(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const lock = readLock()
  const out = resolve(args.out ?? join(ROOT, 'build/out'))
  const work = join(out, '.work')
  const cacheDir = join(ROOT, 'build/out/.cache')
  mkdirSync(work, { recursive: true })

  const jobs = plan(args)
  const apps = [...new Set(jobs.map((j) => j.app))]
  const skipped: string[] = []
  const buildable = apps.filter((a) => {
    if (existsSync(join(ROOT, a.entry))) return true
    skipped.push(`${a.name}: ${a.entry} does not exist yet`)
    log(`skip ${a.name}: ${a.entry} does not exist yet`)
    return false
  })
  const todo = jobs.filter((j) => buildable.includes(j.app))
  if (todo.length === 0) throw new Error('nothing to build')
  log(`building ${todo.map((j) => outputName(j.app.name, j.target)).join(', ')} (Node ${lock.version})`)

  // 1. Base binaries first: a missing one should fail the build before any slow step, naming everything to fetch.
  const targets = [...new Set(todo.map((j) => j.target))]
  const bases = new Map<Target, string>()
  const missing: Target[] = []
  for (const t of targets) {
    log(`[${t}] base binary`)
    try {
      const opts = { cacheDir, offline: args.offline, tarballs: args.tarballs, log: (m: string) => log(`  ${m}`) }
      bases.set(t, await nodeBinary(lock, t, opts))
    } catch (err) {
      if (!(err instanceof MissingBinaryError)) throw err
      log(`  ${err.message}`)
      missing.push(t)
    }
  }
  if (missing.length > 0) throw new MissingBinaryError(fetchHint(lock, missing))
  const maker = await blobNode(lock, cacheDir, args.offline, args.tarballs)

  // 2. One bundle per app (the JS is the same for every target).
  const bundles = new Map<App, string>()
  for (const app of buildable) {
    log(`[${app.name}] bundle ${app.entry}`)
    const server = app.name === 'interdict-server'
    const b = await bundle(
      app.entry,
      join(work, `${app.name}.cjs`),
      server ? serverPlugins() : [],
      server ? await serverDefines(work) : {},
    )
    for (const w of b.warnings) log(`  warning: ${w}`)
    log(`  ${relative(ROOT, b.file)} ${human(b.bytes)}`)
    bundles.set(app, b.file)
  }

  // 3. Per target: blob (assets differ per OS), copy, strip, inject, sign.
  const results: { file: string; bytes: number; sha256: string; notes: string[] }[] = []
  for (const { app, target } of todo) {
    const name = outputName(app.name, target)
    const step = (s: string) => log(`[${app.name} ${target}] ${s}`)
    step('SEA blob')
    const blob = join(work, `${app.name}-${target}.blob`)
    const config: SeaConfig = {
      main: bundles.get(app) as string,
      output: blob,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      // V8 code cache (~30 ms less startup) is only valid for the exact Node binary that made it: the host's target.
      useCodeCache: target === hostTarget(),
      ...(app.name === 'interdict-agent' ? { execArgv: AGENT_EXEC_ARGV, execArgvExtension: 'none' as const } : {}),
      assets: {
        ...(app.name === 'interdict-agent' ? fastlistAsset(target) : {}),
        ...(app.name === 'interdict-server' ? serverSeaAssets(target) : {}),
      },
    }
    await makeBlob(maker, config, seaConfigPath(work, app.name, target))
    const file = join(out, name)
    const notes = await makeExecutable({ base: bases.get(target) as string, blob, out: file, target, step })
    step('sha256')
    results.push({ file, bytes: statSync(file).size, sha256: sha256File(file), notes })
  }

  // 4. Checksums: this run's outputs replace their old lines; lines for other outputs still present are kept.
  const sumsFile = join(out, 'SHA256SUMS')
  const sums = new Map<string, string>()
  if (existsSync(sumsFile)) {
    for (const line of readFileSync(sumsFile, 'utf8').split('\n')) {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
      if (m?.[1] && m[2] && existsSync(join(out, m[2]))) sums.set(m[2], m[1])
    }
  }
  for (const r of results) sums.set(relative(out, r.file), r.sha256)
  writeFileSync(
    sumsFile,
    [...sums]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([f, h]) => `${h}  ${f}\n`)
      .join(''),
  )

  process.stdout.write(`\n${'OUTPUT'.padEnd(34)} ${'SIZE'.padStart(9)}  SHA256\n`)
  for (const r of results) {
    process.stdout.write(`${relative(ROOT, r.file).padEnd(34)} ${human(r.bytes).padStart(9)}  ${r.sha256}\n`)
    for (const n of r.notes) process.stdout.write(`${''.padEnd(34)} ${''.padStart(9)}  - ${n}\n`)
  }
  process.stdout.write(`\nwrote ${relative(ROOT, sumsFile)}; ${results.length} executables in ${elapsed().trim()}\n`)
  if (targets.some((t) => t.startsWith('darwin-'))) {
    process.stdout.write(
      'NOTICE: macOS binaries are unsigned. Apple Silicon refuses to run them until signed: release signing and\n' +
        'notarization run on a Mac host (codesign + notarytool); the exact commands are in build/README.md.\n',
    )
  }
  if (targets.some(isWindows) && !process.env.INTERDICT_SIGN_CERT) {
    process.stdout.write('NOTICE: Windows executables are unsigned (set INTERDICT_SIGN_CERT and INTERDICT_SIGN_KEY).\n')
  }
  for (const s of skipped) process.stdout.write(`SKIPPED: ${s}\n`)
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err)
  process.stderr.write(`\nbuild failed: ${msg}\n`)
  if (!(err instanceof MissingBinaryError) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
  process.exitCode = err instanceof MissingBinaryError ? 3 : 1
})
