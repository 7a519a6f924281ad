// better-sqlite3 is a native addon compiled for one Node ABI; its prebuilt for Node 22 (ABI 127) comes from GitHub
// releases, which this build cannot reach, and a SEA binary cannot require a .node file from node_modules anyway.
// The server binary therefore swaps it for build/sea/better-sqlite3-node-sqlite.cjs: the same API subset on Node 22's
// built-in node:sqlite. PostgreSQL (pg, pure JS) is bundled as is. Details and the addon alternative: build/README.md.
import { fileURLToPath } from 'node:url'
import type * as esbuild from 'esbuild'
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

export function serverSeaAssets(_target: Target): Record<string, string> {
  return {}
}
