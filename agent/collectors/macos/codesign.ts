// Code signature of an app bundle from `codesign -dv --verbose=2`: the Team ID and developer name survive renaming the
// bundle or editing its Info.plist, so they identify an app more firmly than its bundle id.
import { execFile } from 'node:child_process'

export interface CodeSignInfo {
  identifier?: string
  /** 10-character Apple Team ID; absent for ad-hoc and unsigned code (`TeamIdentifier=not set`). */
  teamId?: string
  /** The developer named by the leaf certificate, e.g. `Telegram FZ-LLC`; absent when Apple re-signed it (App Store). */
  signer?: string
  /** The certificate chain, leaf first, as printed (`Developer ID Application: Telegram FZ-LLC (C67CF9S4VU)`, ...). */
  authorities: string[]
  adhoc: boolean
  unsigned: boolean
}

// Leaf certificate kinds that name the developer: `<kind>: <organisation> (<team or cert id>)`.
const DEVELOPER_CERT =
  /^(?:Developer ID Application|Apple Development|Apple Distribution|Mac Developer|3rd Party Mac Developer Application|iPhone Distribution|iPhone Developer): (.+?)(?: \(([A-Z0-9]{10})\))?$/

/** Parse what `codesign -dv --verbose=2 PATH` prints (on stderr). Pure. */
export function parseCodesign(text: string): CodeSignInfo {
  const info: CodeSignInfo = { authorities: [], adhoc: false, unsigned: false }
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd()
    if (/code object is not signed at all/.test(line)) info.unsigned = true
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    const key = line.slice(0, eq)
    const value = line.slice(eq + 1)
    if (key === 'Identifier') info.identifier = value
    else if (key === 'TeamIdentifier') {
      if (/^[A-Z0-9]{10}$/.test(value)) info.teamId = value
    } else if (key === 'Authority') info.authorities.push(value)
    else if (key === 'Signature' && value === 'adhoc') info.adhoc = true
    else if (key === 'CodeDirectory v' && /\badhoc\b/.test(value)) info.adhoc = true
  }
  const leaf = info.authorities[0]
  const m = leaf ? DEVELOPER_CERT.exec(leaf) : null
  if (m) {
    info.signer = m[1]
    // Old codesign versions omit TeamIdentifier; the leaf certificate still carries it.
    if (!info.teamId && m[2] && leaf?.startsWith('Developer ID')) info.teamId = m[2]
  }
  return info
}

export type CodesignRunner = (bundlePath: string) => Promise<CodeSignInfo | undefined>

/** Run the real codesign (darwin only). Undefined when it cannot tell (timeout, not found); `unsigned` when unsigned. */
export const runCodesign: CodesignRunner = (bundlePath) =>
  new Promise((resolve) => {
    execFile(
      '/usr/bin/codesign',
      ['-dv', '--verbose=2', bundlePath],
      { timeout: 5000, maxBuffer: 1024 * 1024, encoding: 'utf8' },
      (err, _stdout, stderr) => {
        const text = String(stderr ?? '')
        if (err && !/not signed at all/.test(text)) return resolve(undefined)
        resolve(parseCodesign(text))
      },
    )
  })
