// Human output helpers shared by the agent's commands: aligned tables and one-line evidence.
import type { Row } from './collectors/types.js'

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const w = widths[i]!
        const text = c.length > w ? `${c.slice(0, w - 1)}…` : c
        return i === cells.length - 1 ? text : text.padEnd(w)
      })
      .join('  ')
  return [line(headers), ...rows.map(line)].join('\n')
}

/** The few facts that identify what was found, in one line. */
export function evidenceLine(row: Row): string {
  switch (row.kind) {
    case 'process':
      return `pid ${row.pid} ${row.exe ?? row.name}${row.user ? ` (${row.user})` : ''}`
    case 'package':
      return `${row.manager} ${row.name}${row.version ? ` ${row.version}` : ''}${row.user ? ` (${row.user})` : ''}`
    case 'windows-program':
      return `${row.hive}${row.user ? ` ${row.user}` : ''} ${row.displayName ?? row.keyName}`
    case 'appx':
      return `appx ${row.packageFullName}`
    case 'connection':
      return `pid ${row.pid ?? '?'} -> ${row.remoteAddress}:${row.remotePort}`
    default:
      return row.path
  }
}
