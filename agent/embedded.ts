// Repo files a standalone binary carries inside itself: the shipped policy catalogue and the service templates.
// build/bundle.ts defines __INTERDICT_EMBEDDED__ at bundle time; from a checkout the files are read from the repo.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

declare const __INTERDICT_EMBEDDED__: Record<string, string> | undefined

function embedded(): Record<string, string> | undefined {
  try {
    return __INTERDICT_EMBEDDED__
  } catch {
    return undefined // ReferenceError: running from a checkout
  }
}

/** True inside a built binary (the bundle carries its own copy of the repo files it needs). */
export function isStandalone(): boolean {
  return embedded() !== undefined
}

/** A repo file's text (repo-relative path with `/`): embedded in a binary, else read from the checkout. */
export function repoText(rel: string): string {
  const files = embedded()
  if (files) {
    const text = files[rel]
    if (text === undefined) throw new Error(`${rel} is not embedded in this binary`)
    return text
  }
  return readFileSync(fileURLToPath(new URL(`../${rel}`, import.meta.url)), 'utf8')
}

const materialized = new Map<string, string>()

/**
 * Inside a binary: the embedded files under a repo folder, written once per process into a fresh private temp dir
 * (mode 0700, random name, removed at exit), for code that wants a directory. Undefined from a checkout.
 */
export function embeddedDir(prefix: string): string | undefined {
  const files = embedded()
  if (!files) return undefined
  const done = materialized.get(prefix)
  if (done) return done
  const dir = mkdtempSync(join(tmpdir(), 'interdict-embedded-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  for (const [rel, text] of Object.entries(files)) {
    if (!rel.startsWith(`${prefix}/`)) continue
    const path = join(dir, ...rel.slice(prefix.length + 1).split('/'))
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text, { mode: 0o600 })
  }
  materialized.set(prefix, dir)
  return dir
}
