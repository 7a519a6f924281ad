// What `npm run build` makes: the apps (entry points), the targets (OS-arch) and which app is built for which target.
import { readFileSync } from 'node:fs'

export const TARGETS = ['linux-x64', 'linux-arm64', 'win-x64', 'win-arm64', 'darwin-x64', 'darwin-arm64'] as const
export type Target = (typeof TARGETS)[number]

export interface App {
  /** Output name (and the name in `--only`). */
  name: 'interdict-agent' | 'interdict-server' | 'interdictctl'
  /** Short alias for `--only`. */
  alias: string
  /** Entry point, relative to the repo root. */
  entry: string
  /** Targets built by default. */
  targets: readonly Target[]
}

export const APPS: readonly App[] = [
  { name: 'interdict-agent', alias: 'agent', entry: 'agent/cli.ts', targets: TARGETS },
  { name: 'interdict-server', alias: 'server', entry: 'server/main.ts', targets: ['linux-x64'] },
  { name: 'interdictctl', alias: 'ctl', entry: 'server/ctl/cli.ts', targets: ['linux-x64'] },
]

export interface LockEntry {
  package: string
  integrity: string
  /** Path of the node binary inside the tarball. */
  binary: string
  /** sha256 of the extracted binary. */
  sha256: string
}

export interface NodeLock {
  version: string
  targets: Record<Target, LockEntry>
}

export const LOCK_FILE = new URL('./node-binaries.lock.json', import.meta.url)

export function readLock(): NodeLock {
  const lock = JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as NodeLock
  for (const t of TARGETS) {
    if (!lock.targets[t]) throw new Error(`build/node-binaries.lock.json has no entry for ${t}`)
  }
  return lock
}

export function isWindows(t: Target): boolean {
  return t.startsWith('win-')
}

export function isMac(t: Target): boolean {
  return t.startsWith('darwin-')
}

export function outputName(app: App['name'], t: Target): string {
  return `${app}-${t}${isWindows(t) ? '.exe' : ''}`
}

/** The target this machine runs (for the Node that makes SEA blobs), if it is one we know. */
export function hostTarget(platform = process.platform, arch = process.arch): Target | undefined {
  const os = platform === 'win32' ? 'win' : platform
  const t = `${os}-${arch}`
  return (TARGETS as readonly string[]).includes(t) ? (t as Target) : undefined
}

/** Parse `--target a,b --target c`, `--only agent`, `--offline`, `--out DIR` (pure; throws on unknown input). */
export interface BuildArgs {
  targets?: Target[]
  only?: App['name'][]
  offline: boolean
  out?: string
  tarballs?: string
  help: boolean
}

export function parseArgs(argv: readonly string[]): BuildArgs {
  const args: BuildArgs = { offline: false, help: false }
  const value = (i: number, flag: string) => {
    const v = argv[i + 1]
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const take = () => {
      if (inline !== undefined) return inline
      const v = value(i, flag)
      i++
      return v
    }
    if (flag === '--target' || flag === '-t') {
      for (const t of take().split(',')) {
        if (!(TARGETS as readonly string[]).includes(t))
          throw new Error(`unknown target ${t} (one of ${TARGETS.join(', ')})`)
        args.targets = [...(args.targets ?? []), t as Target]
      }
    } else if (flag === '--only') {
      for (const o of take().split(',')) {
        const app = APPS.find((x) => x.name === o || x.alias === o)
        if (!app) throw new Error(`unknown app ${o} (one of ${APPS.map((x) => x.alias).join(', ')})`)
        args.only = [...(args.only ?? []), app.name]
      }
    } else if (flag === '--offline') args.offline = true
    else if (flag === '--out') args.out = take()
    else if (flag === '--tarballs') args.tarballs = take()
    else if (flag === '--help' || flag === '-h') args.help = true
    else throw new Error(`unknown option ${a}`)
  }
  return args
}

/** Which (app, target) pairs a build makes: `--target` narrows every app to those targets it supports by default. */
export function plan(args: Pick<BuildArgs, 'targets' | 'only'>): { app: App; target: Target }[] {
  const out: { app: App; target: Target }[] = []
  for (const app of APPS) {
    if (args.only && !args.only.includes(app.name)) continue
    for (const target of app.targets) {
      if (args.targets && !args.targets.includes(target)) continue
      out.push({ app, target })
    }
  }
  return out
}
