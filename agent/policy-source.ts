// Where a scan's rules come from: an explicit policy file/dir, else the shipped catalogue.
import { fileURLToPath } from 'node:url'
import { compileBundle } from '../policies/compile.js'
import { loadPolicies } from '../policies/load.js'
import type { BundlePayload } from '../policies/schema.js'

/** The shipped catalogue; a standalone binary sets INTERDICT_CATALOG to where it unpacked its copy. */
export function catalogDir(): string {
  return process.env.INTERDICT_CATALOG ?? fileURLToPath(new URL('../policies/catalog', import.meta.url))
}

/** Compile local policy files for one class (unsigned: local files are trusted as the operator's own input). */
export async function localBundle(fileOrDir: string | undefined, cls: string): Promise<BundlePayload> {
  const policies = await loadPolicies(fileOrDir ?? catalogDir())
  return compileBundle(policies, cls, { version: 1 })
}
