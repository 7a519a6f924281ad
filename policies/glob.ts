// Path patterns used by `paths` and `artifacts` rules, compiled once to a RegExp (pure).
// `~` is any user's home, `%APPDATA%` etc. any Windows user's folder, `*` one segment, `**` any depth.
import type { Os } from '../agent/collectors/types.js'

const HOME = '(?:/home/[^/]+|/var/home/[^/]+|/root|/Users/[^/]+|[A-Za-z]:/Users/[^/]+)'
const WIN_VARS: Record<string, string> = {
  '%APPDATA%': '[A-Za-z]:/Users/[^/]+/AppData/Roaming',
  '%LOCALAPPDATA%': '[A-Za-z]:/Users/[^/]+/AppData/Local',
  '%USERPROFILE%': '[A-Za-z]:/Users/[^/]+',
  '%PROGRAMFILES%': '[A-Za-z]:/Program Files(?: \\(x86\\))?',
  '%PROGRAMDATA%': '[A-Za-z]:/ProgramData',
}

export function normalizePath(p: string): string {
  return p.replace(/\\/g, '/')
}

export function globToRegExp(pattern: string, os: Os): RegExp {
  const p = normalizePath(pattern.trim()).replace(/\/+$/, '')
  let re = ''
  let i = 0
  if (p.startsWith('~')) {
    re += HOME
    i = 1
  } else {
    const v = p.match(/^%[A-Z_]+%/)?.[0]
    if (v && WIN_VARS[v]) {
      re += WIN_VARS[v]
      i = v.length
    }
  }
  for (; i < p.length; i++) {
    const c = p[i]!
    if (c === '*') {
      if (p[i + 1] === '*') {
        re += '.*'
        i++
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  // A folder pattern also covers what is inside it.
  return new RegExp(`^${re}(?:/.*)?$`, os === 'linux' ? '' : 'i')
}
