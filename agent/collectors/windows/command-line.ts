// Windows command lines (process CommandLine, uninstall strings) split into argv, shared by collectors and actions.

/**
 * Split a Windows command line like CommandLineToArgvW: the program is everything up to the closing quote or, when
 * unquoted, up to the first `.exe` (uninstall strings often leave `C:\Program Files\...` unquoted); arguments follow
 * the MSVCRT rules (2n backslashes + quote = n backslashes and a quote toggle; 2n+1 = n and a literal quote).
 */
export function parseWindowsCommandLine(line: string): string[] {
  const s = line.trim()
  if (!s) return []
  let program: string
  let rest: string
  if (s.startsWith('"')) {
    const end = s.indexOf('"', 1)
    program = end < 0 ? s.slice(1) : s.slice(1, end)
    rest = end < 0 ? '' : s.slice(end + 1)
  } else {
    const exe = s.match(/^(.*?\.exe)(?=\s|$)/i)
    const first = exe?.[1] ?? s.match(/^\S+/)![0]
    program = first
    rest = s.slice(first.length)
  }
  const args: string[] = []
  let cur = ''
  let inArg = false
  let quoted = false
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!
    if (c === '\\') {
      let n = 0
      while (rest[i] === '\\') {
        n++
        i++
      }
      if (rest[i] === '"') {
        cur += '\\'.repeat(Math.floor(n / 2))
        if (n % 2) cur += '"'
        else quoted = !quoted
      } else {
        cur += '\\'.repeat(n)
        i--
      }
      inArg = true
    } else if (c === '"') {
      // "" inside quotes is a literal quote (MSVCRT 2008+).
      if (quoted && rest[i + 1] === '"') {
        cur += '"'
        i++
      } else quoted = !quoted
      inArg = true
    } else if ((c === ' ' || c === '\t') && !quoted) {
      if (inArg) args.push(cur)
      cur = ''
      inArg = false
    } else {
      cur += c
      inArg = true
    }
  }
  if (inArg) args.push(cur)
  return [program, ...args]
}
