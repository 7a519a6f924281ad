// Where a scan's rules come from: an explicit policy file/dir, else the shipped catalogue.
import { fileURLToPath } from 'node:url'
import { compileBundle } from '../policies/compile.js'
import { loadPolicies } from '../policies/load.js'
import type { BundlePayload } from '../policies/schema.js'
import { embeddedDir } from './embedded.js'

/** The shipped catalogue: INTERDICT_CATALOG, else a built binary's embedded copy (agent/embedded.ts), else the repo's. */
export function catalogDir(): string {
  const repo = () => fileURLToPath(new URL('../policies/catalog', import.meta.url))
  return process.env.INTERDICT_CATALOG ?? embeddedDir('policies/catalog') ?? repo()
}

/** Compile local policy files for one class (unsigned: local files are trusted as the operator's own input). */
export async function localBundle(fileOrDir: string | undefined, cls: string): Promise<BundlePayload> {
  const policies = await loadPolicies(fileOrDir ?? catalogDir())
  return compileBundle(policies, cls, { version: 1 })
}
