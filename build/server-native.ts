// better-sqlite3 is a native addon compiled for one Node ABI; its prebuilt for Node 22 (ABI 127) comes from GitHub
// releases, which this build cannot reach, and a SEA binary cannot require a .node file from node_modules anyway.
// The server binary therefore swaps it for build/sea/better-sqlite3-node-sqlite.cjs: the same API subset on Node 22's
// built-in node:sqlite. PostgreSQL (pg, pure JS) is bundled as is. Details and the addon alternative: build/README.md.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type * as esbuild from 'esbuild'
import { bundle } from './bundle.js'
import type { Target } from './targets.js'

const SHIM = fileURLToPath(new URL('./sea/better-sqlite3-node-sqlite.cjs', import.meta.url))

export function serverPlugins(): esbuild.Plugin[] {
  return [
    {
      name: 'interdict-sqlite',
      setup(b) {
        b.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: SHIM }))
      },
    },
  ]
}

/**
 * Build-time constants of the server bundle. The report-writer thread (server/storage/sqlite-ingest.ts) is started
 * from a file in a checkout; a SEA has no such file, so its bundled source travels in the binary as a string and
 * starts as an eval'd worker. (Its only requires are Node built-ins, node:sqlite through the shim included.)
 */
export async function serverDefines(workDir: string): Promise<Record<string, string>> {
  const thread = await bundle(
    'server/storage/sqlite-ingest.thread.ts',
    join(workDir, 'interdict-server-sqlite-thread.cjs'),
    serverPlugins(),
  )
  return { __INTERDICT_SQLITE_THREAD__: JSON.stringify(thread.js) }
}

export function serverSeaAssets(_target: Target): Record<string, string> {
  return {}
}
