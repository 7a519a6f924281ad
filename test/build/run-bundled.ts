// Shared by the bundle tests: a script bundled with esbuild against the repo's node_modules, then run by this Node.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as esbuild from 'esbuild'
import { ROOT } from '../../build/bundle.js'

/** Bundle `script` (CommonJS, for Node) with `options` on top, run it; its exit status, output and the bundle. */
export async function runBundled(
  script: string,
  options: esbuild.BuildOptions = {},
): Promise<{ status: number | null; stdout: string; stderr: string; js: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'interdict-bundled-'))
  try {
    const out = join(dir, 'script.cjs')
    await esbuild.build({
      stdin: { contents: script, resolveDir: ROOT, loader: 'js' },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: out,
      logLevel: 'silent',
      ...options,
    })
    const res = spawnSync(process.execPath, [out], { encoding: 'utf8', timeout: 30_000 })
    return { status: res.status, stdout: res.stdout, stderr: res.stderr, js: readFileSync(out, 'utf8') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
