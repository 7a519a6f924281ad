// Semantic checks the schema cannot express: rules so broad they would hit innocent software, or malformed values.
// An enforcement agent that kills the wrong process is worse than none, so these are errors, not warnings.
import { parseCidr } from './net.js'
import type { PolicyFile } from './schema.js'

export interface RuleProblem {
  path: string
  message: string
}

// Names of OS and runtime processes that no ban may target by name alone.
const PROTECTED_NAMES = new Set(
  [
    'init',
    'systemd',
    'launchd',
    'kernel_task',
    'sh',
    'bash',
    'zsh',
    'dash',
    'fish',
    'sudo',
    'su',
    'login',
    'sshd',
    'node',
    'python',
    'python3',
    'perl',
    'ruby',
    'java',
    'dbus-daemon',
    'xorg',
    'gnome-shell',
    'kwin',
    'finder',
    'dock',
    'windowserver',
    'explorer.exe',
    'svchost.exe',
    'lsass.exe',
    'csrss.exe',
    'winlogon.exe',
    'services.exe',
    'smss.exe',
    'wininit.exe',
    'dwm.exe',
    'cmd.exe',
    'powershell.exe',
    'pwsh.exe',
    'conhost.exe',
    'msedge.exe',
    'chrome',
    'chrome.exe',
    'firefox',
    'firefox.exe',
    'safari',
    'electron',
    'interdict-agent',
    'interdict-agent.exe',
  ].map((n) => n.toLowerCase()),
)

const OS_VENDORS = new Set([
  'microsoft corporation',
  'microsoft windows',
  'apple inc.',
  'canonical',
  'debian',
  'red hat, inc.',
])

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

const WILDCARD = /[*?[\]]/

/** Paths: absolute or rooted at a user variable, with at least two literal segments and a literal last segment. */
function pathProblem(p: string, kind: 'path' | 'artifact'): string | undefined {
  const norm = p.trim().replace(/\\/g, '/')
  const rooted = /^(\/|~(\/|$)|%[A-Z_]+%(\/|$)|[A-Za-z]:\/)/.test(norm)
  if (!rooted) return `${kind} must be absolute or start with ~ or %APPDATA%/%LOCALAPPDATA%/%USERPROFILE%`
  const parts = norm.split('/').filter((s) => s !== '' && !/^[A-Za-z]:$/.test(s))
  const literal = parts.filter((s) => !WILDCARD.test(s) && s !== '~' && !/^%[A-Z_]+%$/.test(s))
  const last = parts[parts.length - 1] ?? ''
  if (literal.length < 1 || (parts.length < 2 && !/^(~|%)/.test(norm)) || /^\*+$/.test(last) || norm === '/') {
    return `${kind} "${p}" is too broad: name a specific folder or file`
  }
  if (kind === 'artifact' && WILDCARD.test(norm)) return `artifact "${p}" may not contain wildcards`
  return undefined
}

function nameProblem(n: string): string | undefined {
  const t = n.trim()
  if (t !== n || t === '') return 'process name is empty or has surrounding spaces'
  if (WILDCARD.test(t)) return `process name "${n}" has a wildcard; names match exactly`
  if (t.includes('/') || t.includes('\\')) return `process name "${n}" contains a path separator; use paths instead`
  if (t.replace(/\.exe$/i, '').length < 3) return `process name "${n}" is too short to be specific`
  if (PROTECTED_NAMES.has(t.toLowerCase())) return `process name "${n}" belongs to the OS or a common runtime`
  return undefined
}

function domainProblem(d: string): string | undefined {
  if (!/^(?=.{4,253}$)([a-z0-9](-*[a-z0-9])*\.)+[a-z][a-z0-9-]*[a-z0-9]$/i.test(d)) {
    return `domain "${d}" is not a valid host name (no wildcards, schemes or paths)`
  }
  if (/^(localhost|local)$/i.test(d) || /\.(local|localhost|arpa)$/i.test(d)) return `domain "${d}" is a local name`
  return undefined
}

function cidrProblem(c: string): string | undefined {
  const cidr = parseCidr(c)
  if (!cidr) return `"${c}" is not a CIDR (address/prefix)`
  if (cidr.family === 4 && cidr.prefix < 8) return `CIDR ${c} is wider than /8`
  if (cidr.family === 6 && cidr.prefix < 16) return `CIDR ${c} is wider than /16`
  const v4 = (a: string) => parseCidr(a)!
  const reserved =
    cidr.family === 4
      ? ['127.0.0.0/8', '0.0.0.0/8', '224.0.0.0/4', '169.254.0.0/16']
      : ['::1/128', 'fe80::/10', 'ff00::/8']
  for (const r of reserved.map(v4)) {
    const shift = BigInt((cidr.family === 4 ? 32 : 128) - Math.min(r.prefix, cidr.prefix))
    if (cidr.base >> shift === r.base >> shift) return `CIDR ${c} overlaps reserved range ${r.text}`
  }
  return undefined
}

function markerProblem(m: string): string | undefined {
  if (m.startsWith('hex:')) {
    const hex = m.slice(4)
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) return `marker "${m}" is not valid hex`
    if (hex.length / 2 < 8) return `marker "${m}" is shorter than 8 bytes`
    return undefined
  }
  if (Buffer.byteLength(m) < 8) return `marker "${m}" is shorter than 8 bytes`
  return undefined
}

export function broadRuleProblems(policy: PolicyFile): RuleProblem[] {
  const out: RuleProblem[] = []
  const check = (path: string, values: readonly string[] | undefined, fn: (v: string) => string | undefined) =>
    values?.forEach((v, i) => {
      const msg = fn(v)
      if (msg) out.push({ path: `${path}/${i}`, message: msg })
    })
  const appIds = new Set<string>()
  policy.apps.forEach((app, a) => {
    const base = `/apps/${a}`
    if (appIds.has(app.id)) out.push({ path: `${base}/id`, message: `app id "${app.id}" is used twice in this policy` })
    appIds.add(app.id)
    const m = app.match
    const signals = [
      m.processNames,
      m.paths,
      m.sha256,
      m.bundleIds,
      m.teamIds,
      m.signers,
      m.binaryMarkers,
      m.artifacts,
      m.packages?.deb,
      m.packages?.rpm,
      m.packages?.snap,
      m.packages?.flatpak,
      m.windows?.uninstallKeys,
      m.windows?.displayNames,
      m.windows?.publishers,
      m.windows?.appxFamilies,
      m.windows?.peProductNames,
      m.network?.cidrs,
      m.network?.domains,
    ]
    if (!signals.some((s) => s && s.length > 0)) out.push({ path: `${base}/match`, message: 'app has no match signal' })
    const mp = `${base}/match`
    check(`${mp}/processNames`, m.processNames, nameProblem)
    check(`${mp}/paths`, m.paths, (p) => pathProblem(p, 'path'))
    check(`${mp}/artifacts`, m.artifacts, (p) => pathProblem(p, 'artifact'))
    check(`${mp}/sha256`, m.sha256, (h) =>
      h === EMPTY_SHA256 ? 'sha256 of the empty file matches every empty file' : undefined,
    )
    check(`${mp}/binaryMarkers`, m.binaryMarkers, markerProblem)
    check(`${mp}/network/cidrs`, m.network?.cidrs, cidrProblem)
    check(`${mp}/network/domains`, m.network?.domains, domainProblem)
    check(`${mp}/bundleIds`, m.bundleIds, (b) =>
      /^[A-Za-z0-9-]+(\.[A-Za-z0-9_-]+)+$/.test(b)
        ? undefined
        : `bundle id "${b}" must be reverse-DNS without wildcards`,
    )
    for (const mgr of ['deb', 'rpm', 'snap', 'flatpak'] as const) {
      check(`${mp}/packages/${mgr}`, m.packages?.[mgr], (p) =>
        /^[A-Za-z0-9][A-Za-z0-9.+_-]{1,}$/.test(p) ? undefined : `package name "${p}" is not a plain package name`,
      )
    }
    check(`${mp}/windows/publishers`, m.windows?.publishers, (p) =>
      OS_VENDORS.has(p.trim().toLowerCase()) ? `publisher "${p}" is an OS vendor; too broad` : undefined,
    )
    check(`${mp}/windows/displayNames`, m.windows?.displayNames, (d) =>
      d.trim().length < 4 || WILDCARD.test(d) ? `display name "${d}" is too short or has wildcards` : undefined,
    )
  })
  policy.exemptions?.forEach((e, i) => {
    if (!e.device && !e.class) out.push({ path: `/exemptions/${i}`, message: 'exemption needs a device or a class' })
  })
  return out
}
