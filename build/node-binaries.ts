// The official Node binaries that become the executables: fetched as npm tarballs (`npm pack`, from the npm cache when
// it holds them), checked against build/node-binaries.lock.json, and extracted once into build/out/.cache.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { LockEntry, NodeLock, Target } from './targets.js'

const run = promisify(execFile)

export class MissingBinaryError extends Error {}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

/** npm's integrity string (`sha512-BASE64`) of a file. */
export function integrityOf(path: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(path)).digest('base64')}`
}

function tarballName(entry: LockEntry, version: string): string {
  return `${entry.package}-${version}.tgz`
}

/** What to run on a connected machine when a tarball cannot be had here. */
export function fetchHint(lock: NodeLock, targets: readonly Target[]): string {
  const specs = targets.map((t) => `${lock.targets[t].package}@${lock.version}`)
  return [
    `Node ${lock.version} base binaries are missing for: ${targets.join(', ')}.`,
    'Fetch them into the npm cache on a machine with registry access, then copy ~/.npm/_cacache here:',
    `  npm cache add ${specs.join(' ')}`,
    'or download the tarballs (npm pack SPEC) into a folder and pass it: npm run build -- --tarballs DIR',
  ].join('\n')
}

export interface FetchOptions {
  cacheDir: string
  offline: boolean
  /** A folder that already holds the .tgz files (takes precedence over npm). */
  tarballs?: string
  log: (msg: string) => void
}

async function npmPack(spec: string, dest: string, offline: boolean): Promise<void> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const args = ['pack', spec, '--pack-destination', dest, '--silent', '--no-audit', '--no-fund']
  await run(npm, offline ? [...args, '--offline'] : [...args, '--prefer-offline'], {
    maxBuffer: 64 << 20,
    shell: process.platform === 'win32',
    timeout: 10 * 60_000,
  })
}

/**
 * The path of the extracted, verified Node binary for a target. Order: the extracted cache (checked by sha256), a
 * tarball in `tarballs`, `npm pack --offline` (the npm cache), then the registry unless `offline`.
 */
export async function nodeBinary(lock: NodeLock, target: Target, opts: FetchOptions): Promise<string> {
  const entry = lock.targets[target]
  const dir = join(opts.cacheDir, `node-${lock.version}-${target}`)
  const bin = join(dir, entry.binary.split('/').at(-1) as string)
  if (existsSync(bin) && sha256File(bin) === entry.sha256) return bin

  mkdirSync(opts.cacheDir, { recursive: true })
  const name = tarballName(entry, lock.version)
  const spec = `${entry.package}@${lock.version}`
  let tgz = opts.tarballs ? join(opts.tarballs, name) : ''
  if (!tgz || !existsSync(tgz)) {
    const dl = join(opts.cacheDir, 'tarballs')
    mkdirSync(dl, { recursive: true })
    tgz = join(dl, name)
    if (!existsSync(tgz) || integrityOf(tgz) !== entry.integrity) {
      rmSync(tgz, { force: true })
      try {
        opts.log(`fetching ${spec} (npm cache first)`)
        await npmPack(spec, dl, true)
      } catch {
        if (opts.offline) throw new MissingBinaryError(`${spec} is not in the npm cache (--offline)`)
        opts.log(`${spec} is not in the npm cache: downloading it from the registry`)
        try {
          await npmPack(spec, dl, false)
        } catch (err) {
          const msg = err instanceof Error ? (err.message.split('\n').find((l) => /ERR|error/.test(l)) ?? '') : ''
          throw new MissingBinaryError(`${spec}: not in the npm cache and the registry did not answer ${msg}`.trim())
        }
      }
    }
  }
  const got = integrityOf(tgz)
  if (got !== entry.integrity) {
    throw new Error(`${name}: integrity mismatch\n  expected ${entry.integrity}\n  got      ${got}\nRefusing to build.`)
  }
  opts.log(`extracting ${entry.binary} from ${name}`)
  const tmp = `${dir}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  await run('tar', ['-xzf', tgz, '-C', tmp, entry.binary], { maxBuffer: 1 << 20 })
  const extracted = join(tmp, ...entry.binary.split('/'))
  const sum = sha256File(extracted)
  if (sum !== entry.sha256) throw new Error(`${entry.binary} in ${name}: sha256 ${sum}, lock says ${entry.sha256}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  renameSync(extracted, bin)
  chmodSync(bin, 0o755)
  rmSync(tmp, { recursive: true, force: true })
  return bin
}

/** Whether the tarball for a target can be had without building (cache, extracted copy or registry). For tests. */
export async function canObtain(lock: NodeLock, target: Target, cacheDir: string): Promise<boolean> {
  const entry = lock.targets[target]
  const bin = join(cacheDir, `node-${lock.version}-${target}`, entry.binary.split('/').at(-1) as string)
  if (existsSync(bin)) return true
  const dl = join(cacheDir, 'tarballs')
  if (existsSync(dl) && readdirSync(dl).includes(tarballName(entry, lock.version))) return true
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  try {
    await run(npm, ['view', `${entry.package}@${lock.version}`, 'dist.integrity', '--prefer-offline'], {
      timeout: 30_000,
      shell: process.platform === 'win32',
    })
    return true
  } catch {
    return false
  }
}
