// Node single-executable application steps: make the blob (with the same Node version as the target), copy the base
// binary, strip the stale Windows signature, inject the blob, sign Windows output when a certificate is configured.
import { execFile } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isMac, isWindows, type Target } from './targets.js'

const run = promisify(execFile)

export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

export interface SeaConfig {
  main: string
  output: string
  disableExperimentalSEAWarning: boolean
  useSnapshot: boolean
  useCodeCache: boolean
  assets?: Record<string, string>
  execArgv?: string[]
  execArgvExtension?: 'none' | 'env' | 'cli'
}

// The agent idles between scans and its work is I/O-bound: a 1 MB young generation, the bytecode interpreter alone (no
// baseline or optimising compilers) and V8's size-over-speed heap sizing keep its resident memory down ~15 MB; a scan
// takes the same time either way. (--lite-mode would save as much but also removes WebAssembly, which Node's built-in
// fetch needs at load.) bench/scan.ts and bench/agent-rss.ts measure with these same flags. NODE_OPTIONS is ignored so
// nobody can inject a --require into a root agent.
export const AGENT_EXEC_ARGV = [
  '--max-semi-space-size=1',
  '--no-opt',
  '--no-sparkplug',
  '--no-maglev',
  '--optimize-for-size',
]

/** `node --experimental-sea-config` with the given Node (must be the target's exact version). */
export async function makeBlob(node: string, config: SeaConfig, configPath: string): Promise<void> {
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`)
  // The code cache is only accepted by a Node started with the same V8 flags: make it under the app's execArgv.
  await run(node, [...(config.execArgv ?? []), '--experimental-sea-config', configPath], { maxBuffer: 16 << 20 })
  if (!existsSync(config.output)) throw new Error(`node did not write the SEA blob ${config.output}`)
}

/** Remove the Authenticode signature of the official node.exe: it no longer matches once the blob is injected. */
export async function stripPeSignature(file: string): Promise<boolean> {
  const { signatureGet, signatureSet } = await import('portable-executable-signature')
  const data = readFileSync(file)
  if (!signatureGet(data)) return false
  writeFileSync(file, Buffer.from(signatureSet(data, null)))
  return true
}

export async function inject(file: string, blob: string, target: Target): Promise<void> {
  // postject is CommonJS without type declarations.
  const spec = 'postject'
  const postject = (await import(spec)) as {
    inject: (f: string, n: string, d: Buffer, o: { sentinelFuse: string; machoSegmentName?: string }) => Promise<void>
    default?: { inject: typeof postject.inject }
  }
  const fn = postject.inject ?? postject.default?.inject
  if (!fn) throw new Error('postject has no inject()')
  // postject prints progress on stdout, and LIEF warns about ELF note sections it cannot name (harmless, known):
  // keep the build output readable.
  const write = process.stdout.write
  const writeErr = process.stderr.write
  process.stdout.write = (() => true) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    /Can't find string offset for section name/.test(String(chunk))
      ? true
      : writeErr.call(process.stderr, chunk, ...rest)) as typeof process.stderr.write
  try {
    await fn(file, 'NODE_SEA_BLOB', readFileSync(blob), {
      sentinelFuse: SEA_FUSE,
      ...(isMac(target) ? { machoSegmentName: 'NODE_SEA' } : {}),
    })
  } finally {
    process.stdout.write = write
    process.stderr.write = writeErr
  }
}

/** Sign a Windows exe with osslsigncode when INTERDICT_SIGN_CERT and INTERDICT_SIGN_KEY are set. */
export async function signWindows(file: string, env = process.env): Promise<'signed' | 'unsigned'> {
  const cert = env.INTERDICT_SIGN_CERT
  const key = env.INTERDICT_SIGN_KEY
  if (!cert || !key) return 'unsigned'
  const signed = `${file}.signed`
  const args = ['sign', '-certs', cert, '-key', key, '-n', 'Interdict agent', '-h', 'sha256']
  if (env.INTERDICT_SIGN_PASS) args.push('-pass', env.INTERDICT_SIGN_PASS)
  if (env.INTERDICT_SIGN_TIMESTAMP) args.push('-ts', env.INTERDICT_SIGN_TIMESTAMP)
  await run('osslsigncode', [...args, '-in', file, '-out', signed])
  copyFileSync(signed, file)
  rmSync(signed, { force: true })
  return 'signed'
}

/** Copy the base binary and turn it into the app. Returns notes for the summary. */
export async function makeExecutable(opts: {
  base: string
  blob: string
  out: string
  target: Target
  step: (s: string) => void
}): Promise<string[]> {
  const notes: string[] = []
  copyFileSync(opts.base, opts.out)
  chmodSync(opts.out, 0o755)
  if (isWindows(opts.target)) {
    opts.step('strip stale signature')
    if (await stripPeSignature(opts.out)) notes.push('stale node.exe signature removed')
  }
  opts.step('inject blob')
  await inject(opts.out, opts.blob, opts.target)
  if (isWindows(opts.target)) {
    opts.step('sign')
    const s = await signWindows(opts.out)
    notes.push(s === 'signed' ? 'signed (osslsigncode)' : 'unsigned: set INTERDICT_SIGN_CERT and INTERDICT_SIGN_KEY')
  }
  if (isMac(opts.target)) notes.push('unsigned: sign and notarize on a Mac (build/README.md)')
  return notes
}

export function seaConfigPath(work: string, app: string, target: Target): string {
  return join(work, `${app}-${target}.sea-config.json`)
}
