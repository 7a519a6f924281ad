// Debian packages straight from dpkg's database: one file read and a line scan, much faster than dpkg-query.
import { readFile } from 'node:fs/promises'
import type { Collector, PackageRow } from '../types.js'
import { atRoot } from '../users.js'

export const DPKG_STATUS = '/var/lib/dpkg/status'

/**
 * Parse /var/lib/dpkg/status (pure): packages whose files are on disk, i.e. Status `<want> ok installed`. The want
 * word is usually `install`, but a package on `hold` (or selected for `deinstall` and not yet removed) is still there.
 */
export function parseDpkgStatus(text: string): PackageRow[] {
  const out: PackageRow[] = []
  let name = ''
  let status = ''
  let version = ''
  let arch = ''
  const flush = () => {
    if (name && status.endsWith(' ok installed')) {
      const row: PackageRow = { kind: 'package', manager: 'deb', name, scope: 'system' }
      if (version) row.version = version
      if (arch) row.arch = arch
      out.push(row)
    }
    name = status = version = arch = ''
  }
  let start = 0
  const n = text.length
  while (start <= n) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = n
    // Continuation lines (description, conffiles) start with a space: skip them without slicing.
    const c = text.charCodeAt(start)
    if (start === end || (end === start + 1 && c === 13)) flush()
    else if (c === 80 && text.startsWith('Package:', start)) name = text.slice(start + 8, end).trim()
    else if (c === 83 && text.startsWith('Status:', start)) status = text.slice(start + 7, end).trim()
    else if (c === 86 && text.startsWith('Version:', start)) version = text.slice(start + 8, end).trim()
    else if (c === 65 && text.startsWith('Architecture:', start)) arch = text.slice(start + 13, end).trim()
    start = end + 1
  }
  flush()
  return out
}

export const dpkgCollector: Collector = {
  name: 'dpkg',
  os: ['linux'],
  async collect(ctx) {
    let text: string
    try {
      text = await readFile(atRoot(ctx.root, DPKG_STATUS), 'utf8')
    } catch (err) {
      // Not a Debian-family system: nothing to list. Anything else (permissions) is a real failure.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw new Error(`dpkg: cannot read ${DPKG_STATUS}: ${(err as Error).message}`)
    }
    return parseDpkgStatus(text)
  },
}
