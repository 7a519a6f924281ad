// Snap packages from the filesystem: /snap/<name>/ (mount points) and /var/lib/snapd/snaps/<name>_<rev>.snap
// (the downloaded images), so no snapd round-trip is needed.
import { readdir, readFile } from 'node:fs/promises'
import type { Collector, PackageRow } from '../types.js'
import { atRoot } from '../users.js'
import { byCodeUnit } from '../../../policies/canonical.js'

const NOT_SNAPS = new Set(['bin', 'README'])

/** Parse `snap list` output (pure): header line, then Name Version Rev Tracking Publisher Notes columns. */
export function parseSnapList(text: string): PackageRow[] {
  const out: PackageRow[] = []
  for (const line of text.split('\n')) {
    const [name, version] = line.trim().split(/\s+/)
    if (!name || name === 'Name') continue
    const row: PackageRow = { kind: 'package', manager: 'snap', name: name.split('_')[0]!, scope: 'system' }
    if (version && version !== '-') row.version = version
    out.push(row)
  }
  return out
}

/** `version:` from a snap.yaml (pure; a line scan is enough for this one top-level key). */
export function snapYamlVersion(text: string): string | undefined {
  const m = text.match(/^version:\s*['"]?([^'"\n]+?)['"]?\s*$/m)
  return m?.[1]
}

/** Snap name from an image file name `name_rev.snap` or `name_instance_rev.snap` (pure). */
export function snapNameFromFile(file: string): string | undefined {
  if (!file.endsWith('.snap')) return undefined
  const name = file.split('_')[0]
  return name && file.includes('_') ? name : undefined
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch {
    return []
  }
}

export const snapCollector: Collector = {
  name: 'snap',
  os: ['linux'],
  async collect(ctx) {
    const byName = new Map<string, PackageRow>()
    const snapDir = atRoot(ctx.root, '/snap')
    await Promise.all(
      (await list(snapDir)).map(async (entry) => {
        if (NOT_SNAPS.has(entry) || entry.startsWith('.')) return
        const name = entry.split('_')[0]!
        const row: PackageRow = { kind: 'package', manager: 'snap', name, scope: 'system' }
        try {
          const v = snapYamlVersion(await readFile(`${snapDir}/${entry}/current/meta/snap.yaml`, 'utf8'))
          if (v) row.version = v
        } catch {
          // not mounted (or a fixture): the name alone identifies the package
        }
        // A directory there with no revisions inside is a leftover, not an install.
        const revs = await list(`${snapDir}/${entry}`)
        if (revs.length > 0 && !byName.has(name)) byName.set(name, row)
      }),
    )
    for (const file of await list(atRoot(ctx.root, '/var/lib/snapd/snaps'))) {
      const name = snapNameFromFile(file)
      if (name && !byName.has(name)) byName.set(name, { kind: 'package', manager: 'snap', name, scope: 'system' })
    }
    return [...byName.values()].sort((a, b) => byCodeUnit(a.name, b.name))
  },
}
