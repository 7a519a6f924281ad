// RPM packages via `rpm -qa` (the rpmdb is a SQLite/BDB database: the rpm tool is the stable interface to it).
import { execFile } from 'node:child_process'
import { access } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import type { Collector, PackageRow } from '../types.js'
import { atRoot } from '../users.js'

/** One package per line, tab-separated; the epoch is printed only when set. */
export const RPM_QUERY_FORMAT = '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'

/** Parse `rpm -qa --qf RPM_QUERY_FORMAT` output (pure). */
export function parseRpmQa(text: string): PackageRow[] {
  const out: PackageRow[] = []
  for (const line of text.split('\n')) {
    const [name, version, arch] = line.trim().split('\t')
    if (!name) continue
    const row: PackageRow = { kind: 'package', manager: 'rpm', name, scope: 'system' }
    if (version) row.version = version
    // gpg-pubkey and other pseudo-packages have no architecture.
    if (arch && arch !== '(none)') row.arch = arch
    out.push(row)
  }
  return out
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p)
    return true
  } catch {
    return false
  }
}

/** The rpm binary on PATH (plus the usual system dirs, as services run with a minimal PATH), if any. */
export async function findRpm(): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/local/bin']
  for (const d of dirs) if (d && (await exists(join(d, 'rpm')))) return join(d, 'rpm')
  return undefined
}

const RPMDB_DIRS = ['/var/lib/rpm', '/usr/lib/sysimage/rpm']

export const rpmCollector: Collector = {
  name: 'rpm',
  os: ['linux'],
  async collect(ctx) {
    const rpm = await findRpm()
    if (!rpm) return []
    // rpm installed on a Debian host (alien, build tools) has no database worth querying.
    const dbs = await Promise.all(RPMDB_DIRS.map((d) => exists(atRoot(ctx.root, d))))
    if (!dbs.some(Boolean)) return []
    const args = ['-qa', '--qf', RPM_QUERY_FORMAT]
    if (ctx.root && ctx.root !== '/') args.unshift('--root', ctx.root)
    const text = await new Promise<string>((resolve, reject) => {
      execFile(rpm, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`rpm: \`rpm -qa\` failed: ${stderr.trim() || err.message}`))
        else resolve(stdout)
      })
    })
    return parseRpmQa(text)
  },
}
