// Flatpak apps from their deploy directories: system-wide /var/lib/flatpak/app/<id>/ and per-user
// ~/.local/share/flatpak/app/<id>/. Layout: <id>/<arch>/<branch>/<commit>/, with `current` -> <arch>/<branch>.
import { readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Collector, PackageRow, UserHome } from '../types.js'
import { atRoot } from '../users.js'

export const FLATPAK_SYSTEM_APPS = '/var/lib/flatpak/app'
export const FLATPAK_USER_APPS = '.local/share/flatpak/app'

/** Latest release version from AppStream metainfo XML (pure): releases are listed newest first. */
export function metainfoVersion(xml: string): string | undefined {
  return xml.match(/<release\b[^>]*\bversion="([^"]+)"/)?.[1]
}

async function appRows(dir: string, scope: 'system' | 'user', user?: string): Promise<PackageRow[]> {
  let ids: string[]
  try {
    ids = await readdir(dir)
  } catch {
    return []
  }
  const rows = await Promise.all(
    ids
      .filter((id) => !id.startsWith('.'))
      .map(async (id) => {
        const row: PackageRow = { kind: 'package', manager: 'flatpak', name: id, scope }
        if (user) row.user = user
        let current: string | undefined
        try {
          current = await readlink(join(dir, id, 'current'))
        } catch {
          // no `current` link: fall back to the first arch/branch present
          const arches = await readdir(join(dir, id)).catch(() => [] as string[])
          const arch = arches.find((a) => !a.startsWith('.') && a !== 'current')
          if (!arch) return undefined // an empty leftover directory is not an install
          const branch = (await readdir(join(dir, id, arch)).catch(() => [] as string[]))[0]
          current = branch ? `${arch}/${branch}` : arch
        }
        const arch = current.split('/')[0]
        if (arch) row.arch = arch
        for (const f of [`${id}.metainfo.xml`, `${id}.appdata.xml`]) {
          for (const sub of ['metainfo', 'appdata']) {
            try {
              const xml = await readFile(join(dir, id, current, 'active/files/share', sub, f), 'utf8')
              const v = metainfoVersion(xml)
              if (v) row.version = v
            } catch {}
            if (row.version) break
          }
          if (row.version) break
        }
        return row
      }),
  )
  return rows.filter((r): r is PackageRow => r !== undefined)
}

export async function flatpakApps(root: string | undefined, homes: readonly UserHome[]): Promise<PackageRow[]> {
  const lists = await Promise.all([
    appRows(atRoot(root, FLATPAK_SYSTEM_APPS), 'system'),
    ...homes.map((h) => appRows(join(h.home, FLATPAK_USER_APPS), 'user', h.user)),
  ])
  return lists.flat()
}

export const flatpakCollector: Collector = {
  name: 'flatpak',
  os: ['linux'],
  collect: (ctx) => flatpakApps(ctx.root, ctx.homes),
}
